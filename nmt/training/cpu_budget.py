"""A training budget in CPU time: ``training.max_cpu_time``.

On a machine shared with other jobs a wall-clock budget (``trainer.max_time``) measures the
other jobs as much as the model: a run starved of CPU trains for fewer steps, and two runs
compared "at 15 minutes" may have had very different amounts of computation. The CPU time
of the training process (user + system, all threads: :func:`time.process_time`) is what the
training cost, whatever else runs. It is counted from the start of training (data preparation
excluded), validation included, and over resumes, like ``max_time``.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import lightning as L

log = logging.getLogger("nmt.train")

_DURATION = re.compile(r"(\d+):(\d{1,2}):(\d{1,2}):(\d{1,2})")


def parse_duration(text: str) -> float:
    """Seconds in ``DD:HH:MM:SS`` (the format of ``trainer.max_time``)."""
    match = _DURATION.fullmatch(str(text))
    if match is None:
        raise ValueError(f"expected a duration DD:HH:MM:SS (e.g. 00:00:15:00), got {text!r}")
    days, hours, minutes, seconds = (int(part) for part in match.groups())
    return float(((days * 24 + hours) * 60 + minutes) * 60 + seconds)


class CpuTimeBudget(L.Callback):
    """Stops training once the process has used ``budget_s`` seconds of CPU time.

    Checked at the end of every training batch; under DDP rank 0's count decides for all
    ranks. The CPU time used so far is stored in checkpoints, so a resumed run continues the
    same budget.
    """

    def __init__(self, budget_s: float) -> None:
        if budget_s <= 0:
            raise ValueError(f"training.max_cpu_time must be positive, got {budget_s} s")
        self.budget_s = float(budget_s)
        self.used_before_s = 0.0
        self._started: float | None = None
        self.stopped = False

    def used_s(self) -> float:
        """CPU seconds used by training so far, earlier runs of a resumed run included."""
        running = time.process_time() - self._started if self._started is not None else 0.0
        return self.used_before_s + running

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.process_time()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        spent = trainer.strategy.broadcast(self.used_s() >= self.budget_s)
        if spent and not trainer.should_stop:
            trainer.should_stop = True
            self.stopped = True
            log.info("training.max_cpu_time reached: %.0f s of CPU time used; stopping", self.used_s())

    def state_dict(self) -> dict[str, Any]:
        return {"used_s": self.used_s()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.used_before_s = float(state_dict.get("used_s", 0.0))
