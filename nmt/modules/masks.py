"""Padding masks, in one place: True marks a real token, False padding."""

from __future__ import annotations

import torch


def padding_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """:param lengths: (batch,). :return: (batch, max_len) bool, True at real positions."""
    positions = torch.arange(max_len, device=lengths.device)
    return positions.unsqueeze(0) < lengths.unsqueeze(1)
