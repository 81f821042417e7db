"""Adam, learning-rate schedules and gradient clipping (the ``optim`` config section).

Each function takes the whole ``optim`` section; its defaults are the schema's
(:class:`nmt.config.schema.OptimSchema`).

Schedules (``optim.schedule``), all with an optional linear warm-up of ``optim.warmup_steps``:

* ``none``: constant rate after the warm-up.
* ``plateau``: the rate is multiplied by ``plateau_factor`` when the dev metric has not
  improved for ``plateau_patience`` validations (stepped by the task after each scheduled
  validation, and only once the warm-up is over). The warm-up only touches the rate while it
  lasts, so a plateau cut lasts: a per-step ``LambdaLR`` would reset it at the next step.
* ``inverse_sqrt``: warm-up, then ``sqrt(warmup / step)``.
* ``cosine``: warm-up, then cosine decay to ``min_lr`` at ``trainer.max_steps``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import torch
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, ReduceLROnPlateau

from nmt.config.schema import Schedule, choices

SCHEDULES = choices(Schedule)


def warmup_factor(step: int, warmup_steps: int) -> float:
    """Multiplier of the base rate at (0-based) ``step``: linear from 1/warmup to 1."""
    return min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0


def step_schedule(name: str, cfg: Mapping[str, Any], total_steps: int | None):
    """The per-step multiplier of ``inverse_sqrt`` and ``cosine``; None for the others."""
    warmup = int(cfg["warmup_steps"])
    if name == "inverse_sqrt":
        return lambda step: warmup_factor(step, warmup) * math.sqrt(max(warmup, 1) / max(step + 1, warmup, 1))
    if name == "cosine":
        if not total_steps or total_steps <= 0:
            raise ValueError("optim.schedule=cosine needs trainer.max_steps > 0")
        floor = float(cfg["min_lr"]) / float(cfg["lr"])

        def cosine(step: int) -> float:
            progress = min(1.0, max(0, step - warmup) / max(1, total_steps - warmup))
            return warmup_factor(step, warmup) * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))

        return cosine
    return None


class LinearWarmup(LRScheduler):
    """Linear warm-up of every group's rate over ``warmup_steps`` steps; afterwards it
    leaves the rate alone, so that another schedule (plateau) can change it for good."""

    def __init__(self, optimizer: torch.optim.Optimizer, warmup_steps: int, last_epoch: int = -1) -> None:
        self.warmup_steps = int(warmup_steps)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float | torch.Tensor]:
        step = self.last_epoch
        if step < self.warmup_steps:
            return [float(base) * warmup_factor(step, self.warmup_steps) for base in self.base_lrs]
        if step == self.warmup_steps:
            return [float(base) for base in self.base_lrs]
        return [group["lr"] for group in self.optimizer.param_groups]


def build_optimizer(parameters: Iterable, cfg: Mapping[str, Any]) -> torch.optim.Optimizer:
    """Adam over trainable parameters (or over explicit parameter groups).

    ``optim.fused`` (default true) runs one kernel for all parameters; clipping and the
    non-finite guard unscale fp16 gradients themselves, so it works with every precision.
    """
    params = list(parameters)
    if params and isinstance(params[0], torch.Tensor):
        params = [p for p in params if p.requires_grad]
    fused = bool(cfg["fused"])
    return torch.optim.Adam(
        params,
        lr=float(cfg["lr"]),
        betas=tuple(cfg["betas"]),
        weight_decay=float(cfg["weight_decay"]),
        fused=fused or None,
        foreach=None if fused else True,
    )


def build_plateau(optimizer: torch.optim.Optimizer, cfg: Mapping[str, Any], mode: Literal["min", "max"] = "max"):
    """Reduce the rate when the monitored dev metric stalls; stepped after each validation."""
    if cfg["schedule"] != "plateau":
        return None
    return ReduceLROnPlateau(
        optimizer,
        mode=mode,
        factor=float(cfg["plateau_factor"]),
        patience=int(cfg["plateau_patience"]),
        min_lr=float(cfg["min_lr"]),
    )


def configure(optimizer: torch.optim.Optimizer, cfg: Mapping[str, Any], total_steps: int | None):
    """What ``LightningModule.configure_optimizers`` returns for the per-step schedules."""
    name = cfg["schedule"]
    multiplier = step_schedule(name, cfg, total_steps)
    if multiplier is not None:
        scheduler: LRScheduler = LambdaLR(optimizer, multiplier)
    elif int(cfg["warmup_steps"]) > 0:
        scheduler = LinearWarmup(optimizer, int(cfg["warmup_steps"]))
    else:
        return optimizer
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def gradient_norm(
    parameters: list[torch.Tensor], clip_value: float | None = None, algorithm: str | None = "norm"
) -> torch.Tensor:
    """The total L2 norm of the gradients (a 0-d tensor, may be inf/NaN), after clipping them
    to ``clip_value`` (by total norm, or element-wise with ``algorithm="value"``); no sync."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.zeros(())
    if clip_value and (algorithm or "norm") == "norm":
        return torch.nn.utils.clip_grad_norm_(parameters, clip_value, foreach=True)
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g, dtype=torch.float32) for g in grads]))
    if clip_value:
        torch.nn.utils.clip_grad_value_(parameters, clip_value, foreach=True)
    return norm
