"""What a run reports while it trains: target tokens per second, and plain progress lines
when the output is not a terminal (a log file full of progress-bar redraws is unreadable)."""

from __future__ import annotations

import logging
import sys
import time
from datetime import timedelta

import lightning as L
from lightning.pytorch.callbacks import Timer

log = logging.getLogger("nmt.train")


class TokenThroughput(L.Callback):
    """Logs target tokens per second of training (forward, backward and optimiser step).

    Validation time is excluded: the clock only runs between a batch's start and end.
    :attr:`recent` is the rate over the last ``window`` batches.
    """

    def __init__(self, window: int = 50) -> None:
        self.window = window
        self._reset()
        self.total_tokens = 0
        self.total_seconds = 0.0
        self.recent: float | None = None

    def _reset(self) -> None:
        self._tokens, self._seconds, self._start, self._batches = 0, 0.0, 0.0, 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        elapsed = time.perf_counter() - self._start
        tokens = getattr(batch, "num_target_tokens", None)
        if tokens is None:
            return
        self._tokens += tokens
        self._seconds += elapsed
        self._batches += 1
        self.total_tokens += tokens
        self.total_seconds += elapsed
        if self._batches >= self.window and self._seconds > 0:
            self.recent = self._tokens / self._seconds
            pl_module.log("train/tgt_tokens_per_s", self.recent)
            self._reset()

    def on_train_end(self, trainer, pl_module) -> None:
        if self.total_seconds > 0:
            log.info(
                "training throughput: %.0f target tokens/s (%d tokens in %.1f s of training steps)",
                self.total_tokens / self.total_seconds,
                self.total_tokens,
                self.total_seconds,
            )


def format_duration(seconds: float) -> str:
    return str(timedelta(seconds=int(max(0.0, seconds))))


class ProgressLines(L.Callback):
    """One plain line every ``every_n_steps`` optimiser steps, through the ``nmt.train`` logger::

        step 1200/20000 | epoch 1 | loss 3.214 | 2431 tgt tok/s | lr 1.0e-03 | 0:05:12 elapsed | ETA 0:25:10

    The ETA is the nearer of ``max_steps`` (at this run's step rate, validation included)
    and the end of ``max_time``.
    """

    def __init__(self, every_n_steps: int = 100) -> None:
        self.every_n_steps = max(1, int(every_n_steps))
        self._start = time.monotonic()
        self._mark: tuple[float, int] | None = None

    def on_train_start(self, trainer, pl_module) -> None:
        self._start = time.monotonic()
        self._mark = (self._start, trainer.global_step)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step == 0 or step % self.every_n_steps or not trainer.is_global_zero:
            return
        if self._mark is not None and self._mark[1] == step:
            return  # several batches per step (gradient accumulation)
        log.info(self.line(trainer, step))

    def line(self, trainer, step: int) -> str:
        now = time.monotonic()
        elapsed = now - self._start
        parts = [f"step {step}" + (f"/{trainer.max_steps}" if trainer.max_steps and trainer.max_steps > 0 else "")]
        parts.append(f"epoch {trainer.current_epoch}")
        loss = trainer.callback_metrics.get("train/loss")
        if loss is not None:
            parts.append(f"loss {float(loss):.3f}")
        throughput = next((cb for cb in trainer.callbacks if isinstance(cb, TokenThroughput)), None)
        if throughput is not None and throughput.recent:
            parts.append(f"{throughput.recent:.0f} tgt tok/s")
        if trainer.optimizers:
            parts.append(f"lr {trainer.optimizers[0].param_groups[0]['lr']:.1e}")
        parts.append(f"{format_duration(elapsed)} elapsed")
        remaining = []
        if self._mark is not None and trainer.max_steps and trainer.max_steps > 0:
            seconds, steps = now - self._mark[0], step - self._mark[1]
            if steps > 0:
                remaining.append((trainer.max_steps - step) * seconds / steps)
        timer = next((cb for cb in trainer.callbacks if isinstance(cb, Timer)), None)
        if timer is not None and timer.time_remaining("train") is not None:
            remaining.append(timer.time_remaining("train"))
        if remaining:
            parts.append(f"ETA {format_duration(min(remaining))}")
        return " | ".join(parts)


def progress_bar_wanted(setting) -> bool:
    """``trainer.enable_progress_bar``: true, false, or auto (a bar only on a terminal)."""
    if isinstance(setting, str) and setting.lower() == "auto" or setting is None:
        return sys.stderr.isatty()
    return bool(setting)
