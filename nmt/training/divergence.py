"""Divergence: steps whose loss or gradient norm is not finite.

Such a step is skipped (no parameter or optimiser-state update), counted and logged. After
``patience`` of them in a row the run stops with :class:`TrainingDiverged`: a model that
produces NaN at every step will not recover, and a checkpoint must never hold NaN weights.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Iterable

import torch

log = logging.getLogger("nmt.train")

ADVICE = (
    "checkpoints/last.ckpt holds the weights from before the skipped steps (never NaN). "
    "Try a lower optim.lr (now {lr:g}), a longer optim.warmup_steps, trainer.gradient_clip_val=1.0, "
    "or trainer.precision=32-true, and start again or resume from an earlier checkpoint"
)


class TrainingDiverged(RuntimeError):
    """Too many consecutive non-finite steps, or non-finite weights about to be saved."""


@dataclass
class NonFiniteSteps:
    """Counts skipped steps; :meth:`record` says when to stop.

    :ivar patience: consecutive skipped steps that stop the run (0 = never stop).
    """

    patience: int = 20
    skipped: int = 0
    consecutive: int = 0
    first_of_streak: int | None = None

    def record(self, step: int, loss: float, grad_norm: float) -> bool:
        """Note step ``step`` as skipped; True when the run must stop."""
        self.skipped += 1
        self.consecutive += 1
        if self.consecutive == 1:
            self.first_of_streak = step
        log.warning(
            "step %d: non-finite %s (loss %s, gradient norm %s): update skipped "
            "(%d in a row, %d in all)",
            step,
            "loss" if not math.isfinite(loss) else "gradient",
            loss, grad_norm, self.consecutive, self.skipped,
        )
        return bool(self.patience) and self.consecutive >= self.patience

    def record_good(self) -> None:
        self.consecutive = 0
        self.first_of_streak = None

    def message(self, step: int, lr: float) -> str:
        return (
            f"training diverged: {self.consecutive} consecutive steps with a non-finite loss or "
            f"gradient, from step {self.first_of_streak} to step {step}, were skipped. "
            + ADVICE.format(lr=lr)
        )


def first_non_finite(named: Iterable[tuple[str, torch.Tensor]]) -> str | None:
    """The name of the first tensor holding NaN or infinity, or None."""
    for name, tensor in named:
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            return name
    return None
