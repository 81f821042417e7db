"""Adam with a configurable learning-rate schedule (the ``optim`` config section)."""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

import torch
from torch.optim.lr_scheduler import LambdaLR, ReduceLROnPlateau


def warmup_factor(step: int, warmup_steps: int) -> float:
    return min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0


def step_schedule(name: str, cfg: Mapping[str, Any], total_steps: int | None):
    """A per-step multiplier of the base learning rate, or None for a constant rate.

    ``inverse_sqrt``: linear warm-up, then ``sqrt(warmup / step)``.
    ``cosine``: linear warm-up, then cosine decay to ``min_lr`` at ``total_steps``.
    """
    warmup = int(cfg.get("warmup_steps", 0))
    if name == "inverse_sqrt":
        return lambda step: warmup_factor(step, warmup) * math.sqrt(max(warmup, 1) / max(step + 1, warmup, 1))
    if name == "cosine":
        if not total_steps or total_steps <= 0:
            raise ValueError("optim.schedule=cosine needs trainer.max_steps > 0")
        floor = float(cfg.get("min_lr", 0.0)) / float(cfg["lr"])

        def cosine(step: int) -> float:
            progress = min(1.0, max(0, step - warmup) / max(1, total_steps - warmup))
            return warmup_factor(step, warmup) * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))

        return cosine
    if warmup:
        return lambda step: warmup_factor(step, warmup)
    return None


def build_optimizer(parameters: Iterable, cfg: Mapping[str, Any]) -> torch.optim.Optimizer:
    """Adam over trainable parameters (or over explicit parameter groups)."""
    params = list(parameters)
    if params and isinstance(params[0], torch.Tensor):
        params = [p for p in params if p.requires_grad]
    return torch.optim.Adam(
        params,
        lr=float(cfg["lr"]),
        betas=tuple(cfg.get("betas", (0.9, 0.999))),
        weight_decay=float(cfg.get("weight_decay", 0.0)),
        fused=True,  # one kernel for all parameters, on CPU and GPU
    )


def build_plateau(optimizer: torch.optim.Optimizer, cfg: Mapping[str, Any], mode: str = "max"):
    """Reduce the rate when the monitored dev metric stalls; stepped after each validation."""
    if cfg.get("schedule") != "plateau":
        return None
    return ReduceLROnPlateau(
        optimizer,
        mode=mode,
        factor=float(cfg.get("plateau_factor", 0.5)),
        patience=int(cfg.get("plateau_patience", 2)),
        min_lr=float(cfg.get("min_lr", 0.0)),
    )


def configure(optimizer: torch.optim.Optimizer, cfg: Mapping[str, Any], total_steps: int | None):
    """What ``LightningModule.configure_optimizers`` returns for the per-step schedules."""
    multiplier = step_schedule(cfg.get("schedule", "none"), cfg, total_steps)
    if multiplier is None:
        return optimizer
    scheduler = LambdaLR(optimizer, multiplier)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
