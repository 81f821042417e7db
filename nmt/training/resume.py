"""Exact resume: the random number generators and the position in the training data.

A resumed run must take the very steps an uninterrupted one would have taken. Lightning
restores weights, optimiser, schedules and loop counters; :class:`ResumeState` adds the two
things it leaves out:

* **RNG states** (torch, CUDA, NumPy, Python) of every rank, so that dropout masks after a
  resume are the ones an uninterrupted run would have drawn. They are captured when a
  checkpoint is written and put back just before the first training step after a resume.
  Nothing between a checkpoint and the next step draws from the global generators: our
  loaders have their own generator (:func:`nmt.data.batching.bucketed_loader`) and
  evaluation uses none.
* **The data position**: the epoch of the batch sampler and how many of its batches were
  *trained on* (counted at each training batch's end, so a prefetched batch never counts),
  instead of a position derived from the step count, which goes wrong at ``max_steps``
  stops, with gradient accumulation, and after a kill.

Everything is stored as tensors and plain Python values, so the checkpoint still loads with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import logging
import random
from typing import Any, cast

import lightning as L
import torch

from nmt.training.distributed import gather_objects

log = logging.getLogger("nmt.train")


def capture_rng_states() -> dict[str, Any]:
    """This process's generator states, as tensors and plain values."""
    version, internal, gauss = random.getstate()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": {"version": version, "state": torch.tensor(internal, dtype=torch.int64), "gauss": gauss},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy comes with torch's usual installs
        return states
    kind, keys, pos, has_gauss, cached = cast(tuple[str, Any, int, int, float], np.random.get_state())
    states["numpy"] = {
        "kind": kind,
        "keys": torch.from_numpy(keys.astype(np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached_gaussian": float(cached),
    }
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    """Put back what :func:`capture_rng_states` captured (parts absent here are skipped)."""
    torch.set_rng_state(states["torch"])
    python = states["python"]
    random.setstate((python["version"], tuple(python["state"].tolist()), python["gauss"]))
    cuda = states.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    saved = states.get("numpy")
    if saved is not None:
        import numpy as np

        keys = saved["keys"].numpy().astype(np.uint32)
        np.random.set_state((saved["kind"], keys, saved["pos"], saved["has_gauss"], saved["cached_gaussian"]))


def train_batch_sampler(trainer: L.Trainer) -> Any:
    """The batch sampler of the training loader, or None."""
    loader = trainer.train_dataloader
    return getattr(loader, "batch_sampler", None)


class ResumeState(L.Callback):
    """Saves and restores RNG states and the training data position (see the module doc).

    On resume the datamodule is told where to start through its ``train_start`` attribute
    (``(epoch, batches_done)``), before Lightning builds the training loader.
    """

    def __init__(self) -> None:
        self.epoch = 0
        self.batches_done = 0
        self._restored = False
        self._pending_rng: list[dict[str, Any]] | None = None

    # -- counting what was trained ------------------------------------------------------------
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self._pending_rng is not None:
            self._restore_rng(trainer)
        epoch = getattr(train_batch_sampler(trainer), "pass_epoch", None)
        if epoch is not None and epoch != self.epoch:
            self.epoch, self.batches_done = epoch, 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.batches_done += 1

    # -- checkpoint state ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "data": {"epoch": self.epoch, "batches_done": self.batches_done},
            "rng": gather_objects(capture_rng_states()),  # one entry per rank
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        data = state_dict.get("data") or {}
        self.epoch = int(data.get("epoch", 0))
        self.batches_done = int(data.get("batches_done", 0))
        self._pending_rng = state_dict.get("rng")
        self._restored = True

    def on_fit_start(self, trainer, pl_module) -> None:
        if self._restored and trainer.datamodule is not None:
            trainer.datamodule.train_start = (self.epoch, self.batches_done)

    def on_train_start(self, trainer, pl_module) -> None:
        """Make Lightning's count of batches done in this epoch agree with the sampler.

        Lightning keeps its own count, which it uses to end the epoch; after a stop on an
        epoch's last batch it carries the finished epoch's count into the next one and
        would end that epoch after a single batch.
        """
        if not self._restored:
            return
        self._restored = False
        sampler = train_batch_sampler(trainer)
        if getattr(sampler, "pass_epoch", None) is None:
            return
        done = self.batches_done if sampler.pass_epoch == self.epoch else 0
        self.epoch, self.batches_done = sampler.pass_epoch, done
        loop = trainer.fit_loop.epoch_loop
        current = loop.batch_progress.current
        counted = done - 1 if loop.restarted_on_train_batch_end else done  # Lightning adds one back
        current.ready = current.started = current.processed = current.completed = max(0, counted)

    def _restore_rng(self, trainer) -> None:
        states = self._pending_rng or []
        self._pending_rng = None
        rank = trainer.global_rank
        if len(states) != trainer.world_size:
            log.warning(
                "the checkpoint holds random generator states of %d processes but this run has %d: "
                "dropout after the resume will differ from an uninterrupted run",
                len(states),
                trainer.world_size,
            )
        if states:
            restore_rng_states(states[rank] if rank < len(states) else states[0])
