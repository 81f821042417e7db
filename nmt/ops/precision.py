"""Mixed precision, in one place: which values stay in float32 under bf16/fp16 autocast.

Autocast runs matrix products in half precision; recurrent states, attention scores, the
softmax and the loss must not be, or rounding errors add up over time steps and softmax
inputs overflow (fp16) or lose their small differences (bf16).
"""

from __future__ import annotations

import torch

HALF_DTYPES = (torch.float16, torch.bfloat16)


def full_precision(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` in float32 if it is bf16/fp16; float32 and float64 are kept as they are."""
    return tensor.float() if tensor.dtype in HALF_DTYPES else tensor


def autocast_disabled(tensor: torch.Tensor) -> torch.autocast:
    """A context in which autocast is off on ``tensor``'s device."""
    return torch.autocast(tensor.device.type, enabled=False)
