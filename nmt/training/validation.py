"""Scheduled validations, and early stopping that only counts those.

Lightning also validates when a run is asked to stop between two scheduled validations
(``max_time``, early stop, divergence). That extra validation is useful to log and to pick
``best.ckpt``, but if it fed the plateau schedule or early stopping, a run that was stopped
and resumed would take other steps than one that ran straight through.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import EarlyStopping


def is_scheduled_validation(trainer: L.Trainer) -> bool:
    """True when the validation running now is one the schedule asked for: every
    ``val_check_interval`` training batches (counted across epochs), or at the end of an
    epoch with ``check_val_every_n_epoch``."""
    if trainer.sanity_checking:
        return False
    loop = trainer.fit_loop.epoch_loop
    interval = trainer.val_check_batch
    if trainer.check_val_every_n_epoch is None:
        if isinstance(interval, int) and interval > 0:
            return (loop.total_batch_idx + 1) % interval == 0
        return True
    if loop.batch_progress.is_last_batch:
        return True
    if isinstance(interval, int) and interval > 0:
        return (loop.batch_idx + 1) % interval == 0
    return False


def validation_follows(trainer: L.Trainer) -> bool:
    """At a training batch's end: will Lightning validate, stop or end the epoch next?"""
    loop = trainer.fit_loop.epoch_loop
    if trainer.should_stop or loop.batch_progress.is_last_batch:
        return True
    interval = trainer.val_check_batch
    if not isinstance(interval, int) or interval <= 0:
        return False
    position = loop.total_batch_idx if trainer.check_val_every_n_epoch is None else loop.batch_idx
    return (position + 1) % interval == 0


class ScheduledEarlyStopping(EarlyStopping):
    """:class:`EarlyStopping` that ignores the extra validation of an interrupted run."""

    def on_validation_end(self, trainer, pl_module) -> None:
        if is_scheduled_validation(trainer):
            super().on_validation_end(trainer, pl_module)
