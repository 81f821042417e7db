"""Training callbacks of our own (Lightning provides the rest)."""

from __future__ import annotations

import logging
import time

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

log = logging.getLogger("nmt.train")


class TokenThroughput(L.Callback):
    """Logs target tokens per second of training (forward, backward and optimiser step).

    Validation time is excluded: the clock only runs between a batch's start and end.
    """

    def __init__(self, window: int = 50) -> None:
        self.window = window
        self._reset()
        self.total_tokens = 0
        self.total_seconds = 0.0

    def _reset(self) -> None:
        self._tokens, self._seconds, self._start = 0, 0.0, 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        elapsed = time.perf_counter() - self._start
        tokens = getattr(batch, "num_target_tokens", None)
        if tokens is None:
            return
        self._tokens += tokens
        self._seconds += elapsed
        self.total_tokens += tokens
        self.total_seconds += elapsed
        if (batch_idx + 1) % self.window == 0 and self._seconds > 0:
            pl_module.log("train/tgt_tokens_per_s", self._tokens / self._seconds)
            self._reset()

    def on_train_end(self, trainer, pl_module) -> None:
        if self.total_seconds > 0:
            log.info(
                "training throughput: %.0f target tokens/s (%d tokens in %.1f s of training steps)",
                self.total_tokens / self.total_seconds,
                self.total_tokens,
                self.total_seconds,
            )


class LatestCheckpoint(ModelCheckpoint):
    """Keeps ``last.ckpt`` the latest training state, for resuming.

    Saved after every validation and once more when training ends (max steps, max time or
    early stop). Lightning's own ``save_last`` only refreshes ``last.ckpt`` when the monitored
    metric improved, which would make a resume repeat work.
    """

    def __init__(self, dirpath) -> None:
        super().__init__(
            dirpath=dirpath,
            filename="last",
            monitor=None,
            save_top_k=1,
            save_last=False,
            enable_version_counter=False,
            save_on_train_epoch_end=False,
        )

    def on_train_end(self, trainer, pl_module) -> None:
        if trainer.global_step and self._last_global_step_saved != trainer.global_step:
            self._save_topk_checkpoint(trainer, self._monitor_candidates(trainer))
