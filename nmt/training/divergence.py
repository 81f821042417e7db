"""Divergence: steps whose loss or gradient norm is not finite, and losses that explode.

A non-finite step is skipped (no parameter or optimiser-state update), counted and logged.
After ``patience`` of them in a row the run stops with :class:`TrainingDiverged`: a model that
produces NaN at every step will not recover, and a checkpoint must never hold NaN weights.

A loss can also explode while staying finite (a learning rate far too high drives it to
millions). :class:`ExplodingLoss` stops such a run too: it compares the training loss with
the loss of a uniform guess over the outputs, ``ln(number of outputs)``, where every healthy
run starts and which it only goes below.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass

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
            "step %d: non-finite %s (loss %s, gradient norm %s): update skipped (%d in a row, %d in all)",
            step,
            "loss" if not math.isfinite(loss) else "gradient",
            loss,
            grad_norm,
            self.consecutive,
            self.skipped,
        )
        return bool(self.patience) and self.consecutive >= self.patience

    def record_good(self) -> None:
        self.consecutive = 0
        self.first_of_streak = None

    def message(self, step: int, lr: float) -> str:
        return (
            f"training diverged: {self.consecutive} consecutive steps with a non-finite loss or "
            f"gradient, from step {self.first_of_streak} to step {step}, were skipped. " + ADVICE.format(lr=lr)
        )


def first_non_finite(named: Iterable[tuple[str, torch.Tensor]]) -> str | None:
    """The name of the first tensor holding NaN or infinity, or None."""
    for name, tensor in named:
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            return name
    return None


@dataclass
class ExplodingLoss:
    """Counts consecutive steps whose finite training loss is far above a uniform guess.

    The threshold is ``factor * uniform_loss``. A freshly initialised network predicts close
    to uniformly, so a healthy run starts near ``uniform_loss`` and goes down; label smoothing
    raises the floor the loss can reach but never above ``uniform_loss`` (a uniform guess
    scores exactly that, smoothed or not). A loss ``factor`` (10) times higher means the
    network puts about ``outputs ** -factor`` on the right answer: confidently wrong, which
    training does not recover from. ``patience`` steps in a row are required so that one odd
    batch or a short spike does not stop a run.

    :ivar uniform_loss: ``ln(number of outputs)`` in nats per prediction; 0 disables the check.
    :ivar factor: multiple of ``uniform_loss`` above which a step counts (0 = never).
    :ivar patience: consecutive such steps that stop the run (0 = never).
    """

    uniform_loss: float
    factor: float = 10.0
    patience: int = 20
    consecutive: int = 0
    first_of_streak: int | None = None

    @property
    def threshold(self) -> float:
        """The loss above which a step counts, or infinity when the check is off."""
        if self.factor <= 0 or self.patience <= 0 or self.uniform_loss <= 0:
            return math.inf
        return self.factor * self.uniform_loss

    def above(self, loss: float) -> bool:
        """Whether ``loss`` counts towards a streak."""
        return loss > self.threshold

    def record(self, step: int, loss: float, above: bool) -> bool:
        """Note the finite training loss of step ``step``; True when the run must stop.

        :param above: :meth:`above` of this step's loss on any rank (under DDP every rank
            must take the same decision).
        """
        if not above:
            self.consecutive = 0
            self.first_of_streak = None
            return False
        self.consecutive += 1
        if self.consecutive == 1:
            self.first_of_streak = step
            log.warning(
                "step %d: training loss %.4g is above %.4g (%g x the loss of a uniform guess, %.4g)",
                step,
                loss,
                self.threshold,
                self.factor,
                self.uniform_loss,
            )
        return self.consecutive >= self.patience

    def message(self, step: int, loss: float, lr: float) -> str:
        return (
            f"training exploded: the training loss stayed above {self.threshold:.4g} ({self.factor:g} x "
            f"{self.uniform_loss:.4g}, the loss of a uniform guess) for {self.consecutive} steps in a row, "
            f"from step {self.first_of_streak} to step {step} (last {loss:.4g}), so the weights are ruined. "
            f"Start again with a lower optim.lr (now {lr:g}), e.g. 10 times lower, or a longer optim.warmup_steps "
            f"(or resume with those from checkpoints/best.ckpt if it was validated before step {self.first_of_streak})"
        )
