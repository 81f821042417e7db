"""Attention pooling of encoder states into one vector (hierarchical attention networks).

Yang et al. (2016), "Hierarchical Attention Networks for Document Classification", eq. 5-7:

    u_t     = tanh(W h_t + b)
    alpha_t = exp(u_t . u_w) / sum_{s real} exp(u_s . u_w)     (padding excluded)
    c       = sum_t alpha_t h_t

``u_w`` is a learned context vector. Scores and softmax run in float32, so mixed precision
cannot overflow them.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class AttentionPooling(nn.Module):
    """Masked additive attention with a learned query.

    :param input_size: size of each state ``h_t``.
    :param attention_size: size of ``u_t`` and ``u_w``; None = ``input_size``.
    """

    def __init__(self, input_size: int, attention_size: int | None = None) -> None:
        super().__init__()
        attention_size = attention_size or input_size
        self.projection = nn.Linear(input_size, attention_size)
        self.context = nn.Parameter(torch.empty(attention_size))
        nn.init.uniform_(self.context, -1 / math.sqrt(attention_size), 1 / math.sqrt(attention_size))

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pool a padded batch.

        :param states: (batch, len, input_size) encoder outputs.
        :param mask: (batch, len) bool, True at real tokens; every row needs at least one.
        :return: pooled (batch, input_size) and weights (batch, len), float32, exactly 0 at
            padding and summing to 1 over each row's real tokens.
        """
        if states.dim() != 3 or mask.shape != states.shape[:2]:
            raise ValueError(
                f"expected states (batch, len, dim) and mask (batch, len), "
                f"got {tuple(states.shape)} and {tuple(mask.shape)}"
            )
        if not bool(mask.any(dim=1).all()):
            raise ValueError("attention pooling needs at least one real token per row")
        # Zero the padded states too: 0 * NaN would otherwise leak into the weighted sum.
        states = states.masked_fill(~mask.unsqueeze(-1), 0.0)
        scores = torch.tanh(self.projection(states)).float() @ self.context.float()
        scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        pooled = torch.bmm(weights.unsqueeze(1).to(states.dtype), states).squeeze(1)
        return pooled, weights
