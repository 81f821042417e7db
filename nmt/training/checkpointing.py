"""Checkpoints that survive ``kill -9``: atomic writes, and a ``last.ckpt`` kept fresh.

* :class:`AtomicCheckpointIO` makes Lightning write every checkpoint with
  :func:`nmt.inference.checkpoint.atomic_save` (temporary file in the same directory, fsync, rename).
  Lightning's own writer stages the file in ``$TMPDIR`` and moves it: across file systems
  that is a copy, and a kill during it leaves a truncated ``last.ckpt``.
* :class:`LatestCheckpoint` keeps ``last.ckpt`` the latest training state: after every
  validation, every ``training.save_every_minutes`` of training, and at the end.
* :func:`save_checkpoint_file` turns a disk that fills during a save into
  :class:`CheckpointDiskFull`, whose message names the checkpoints still intact and how to resume.
"""

from __future__ import annotations

import errno
import logging
import pickle
import time
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from nmt.inference.checkpoint import atomic_save, remove_temporary_files
from nmt.training.validation import validation_follows

log = logging.getLogger("nmt.train")

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)  # no space left; disk quota exceeded
RESUMABLE = (
    "last.ckpt",
    "best.ckpt",
)  # full training states, in the order to resume from; average.ckpt holds weights only


class DiskFull(RuntimeError):
    """The disk filled while the run wrote a file; its complete checkpoints are intact."""


class CheckpointDiskFull(DiskFull):
    """The disk filled while a checkpoint was written; the earlier checkpoint files are intact."""


def is_disk_full(error: BaseException) -> bool:
    """True for an ``OSError`` that says the disk (or the user's quota) is full."""
    return isinstance(error, OSError) and error.errno in DISK_FULL


def run_disk_full(error: OSError, checkpoint_dir: Path) -> DiskFull:
    """A full disk met outside a checkpoint save (the curves, a logger, the tokenizers, the
    run summary) as one line: the file, and the checkpoints to resume from."""
    written = f" while writing {error.filename}" if error.filename else ""
    return DiskFull(f"{error.strerror or error}{written}{resume_hint(checkpoint_dir)}")


def save_checkpoint_file(checkpoint: dict[str, Any], path: str | Path) -> None:
    """:func:`atomic_save`, with a full disk reported as :class:`CheckpointDiskFull`.

    The atomic write already removes its temporary file and leaves the previous file at
    ``path`` untouched; what is added is a message that says so and how to go on.
    """
    try:
        atomic_save(checkpoint, path)
    except OSError as error:
        if error.errno not in DISK_FULL:
            raise
        raise CheckpointDiskFull(disk_full_message(Path(path), checkpoint.get("global_step"), error)) from error


def disk_full_message(path: Path, step: int | None, error: OSError) -> str:
    """One line: the file that could not be written, the checkpoints intact beside it, how to resume."""
    at_step = f" at step {step}" if step is not None else ""
    what = f"{error.strerror or error} while writing checkpoint {path}{at_step} (nothing was left half-written)"
    return what + resume_hint(path.parent)


def resume_hint(directory: Path) -> str:
    """The end of a full-disk message: the checkpoints intact in ``directory`` and the command
    that resumes from the newest full training state, or that there is none yet."""
    resumable = next((directory / name for name in RESUMABLE if (directory / name).is_file()), None)
    if resumable is None:
        return "; no complete checkpoint to resume from yet: free some space and start the run again"
    intact = ", ".join(f"{p.name} ({describe_step(p)})" for p in sorted(directory.glob("*.ckpt")))
    return (
        f". Intact in {directory}: {intact}. "
        f"Free some space, then resume with: python -m nmt.train ckpt_path={resumable}"
    )


def describe_step(path: Path) -> str:
    """``step N`` of a checkpoint file, read without loading its tensors, or ``step unknown``."""
    try:
        checkpoint = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
        return f"step {int(checkpoint['global_step'])}"
    except (OSError, RuntimeError, KeyError, TypeError, ValueError, pickle.UnpicklingError):
        # a message helper: an unreadable step must not hide the full disk
        return "step unknown"


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, made atomic on local file systems."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        save_checkpoint_file(checkpoint, path)


class LatestCheckpoint(ModelCheckpoint):
    """Keeps ``last.ckpt`` the latest training state, for resuming.

    Saved after every validation, once more when training ends (max steps, max time, early
    stop or divergence), and every ``save_every_minutes`` minutes of training in between, so
    that a kill loses at most that much work. Lightning's own ``save_last`` only refreshes
    ``last.ckpt`` when the monitored metric improved, which would make a resume repeat work.

    The timed save happens at the end of a training batch, as Lightning's own step-based
    saves do, but never right before a validation, a stop or an epoch's end (a resume
    from there would skip that validation; the save after it comes soon enough). Under
    DDP rank 0 decides, so that every rank takes part in the same saves.

    :param save_every_minutes: None or 0 disables the timed save.
    """

    def __init__(self, dirpath, save_every_minutes: float | None = None) -> None:
        super().__init__(
            dirpath=dirpath,
            filename="last",
            monitor=None,
            save_top_k=1,
            save_last=False,
            enable_version_counter=False,
            save_on_train_epoch_end=False,
        )
        self.save_every_seconds = 60.0 * float(save_every_minutes) if save_every_minutes else None
        self._last_save_time = time.monotonic()
        self.timed_saves = 0

    def setup(self, trainer, pl_module, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if trainer.is_global_zero and self.dirpath:
            removed = remove_temporary_files(self.dirpath)
            if removed:
                log.info("removed %d temporary checkpoint file(s) left by an interrupted write", removed)

    def on_train_start(self, trainer, pl_module) -> None:
        self._last_save_time = time.monotonic()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if self.save_every_seconds is None or trainer.global_step == self._last_global_step_saved:
            return
        due = time.monotonic() - self._last_save_time >= self.save_every_seconds
        if trainer.world_size > 1:
            due = bool(trainer.strategy.broadcast(torch.tensor(due), src=0))
        mid_accumulation = trainer.fit_loop.epoch_loop.batch_progress.current.ready % trainer.accumulate_grad_batches
        if due and not mid_accumulation and not validation_follows(trainer):
            self._save_topk_checkpoint(trainer, self._monitor_candidates(trainer))
            self.timed_saves += 1

    def _save_checkpoint(self, trainer, filepath: str) -> None:
        super()._save_checkpoint(trainer, filepath)
        self._last_save_time = time.monotonic()

    def on_train_end(self, trainer, pl_module) -> None:
        if trainer.global_step and self._last_global_step_saved != trainer.global_step:
            self._save_topk_checkpoint(trainer, self._monitor_candidates(trainer))
