"""What a finished run reports: ``RUN/results.json``.

Written by ``python -m nmt.train`` once training (and the test of the best checkpoint) is
over, so that scripts that compare runs read numbers, not log text::

    {"task": "classification", "global_step": 840, "epoch": 6,
     "train_time_s": 412.3, "train_cpu_s": 405.9, "stopped_by": "max_cpu_time",
     "metrics": {"val/acc": 0.985, "test/acc": 0.982, "test/f1": 0.96, ...}}

``train_time_s`` and ``train_cpu_s`` are the wall-clock and CPU seconds (user + system, all
threads, :func:`time.process_time`) of the training loop, validation included and data
preparation and the final test excluded, counted over resumes like ``trainer.max_time`` and
``training.max_cpu_time``. The file is absent while a run trains, or when it failed.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import EarlyStopping, Timer

from nmt.training.cpu_budget import CpuTimeBudget

RESULTS_FILE = "results.json"


class TrainingClock(L.Callback):
    """Wall-clock and CPU seconds of the training loop, kept in checkpoints over resumes."""

    def __init__(self) -> None:
        self.wall_before_s = 0.0
        self.cpu_before_s = 0.0
        self._started: tuple[float, float] | None = None  # (monotonic, process_time) at the start
        self._stopped: tuple[float, float] | None = None

    def _now(self) -> tuple[float, float]:
        return time.monotonic(), time.process_time()

    def wall_s(self) -> float:
        """Training wall-clock seconds, earlier runs of a resumed run included."""
        return self.wall_before_s + self._running()[0]

    def cpu_s(self) -> float:
        """Training CPU seconds of this process, earlier runs of a resumed run included."""
        return self.cpu_before_s + self._running()[1]

    def _running(self) -> tuple[float, float]:
        if self._started is None:
            return 0.0, 0.0
        end = self._stopped or self._now()
        return end[0] - self._started[0], end[1] - self._started[1]

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started, self._stopped = self._now(), None

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._stopped = self._now()

    def snapshot(self) -> TrainingClock:
        """A stopped copy with this clock's totals (a later restore of an older checkpoint,
        as ``trainer.test(ckpt_path=best)`` does, leaves it alone)."""
        copy = TrainingClock()
        copy.load_state_dict(self.state_dict())
        return copy

    def state_dict(self) -> dict[str, Any]:
        return {"wall_s": self.wall_s(), "cpu_s": self.cpu_s()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.wall_before_s = float(state_dict.get("wall_s", 0.0))
        self.cpu_before_s = float(state_dict.get("cpu_s", 0.0))


def stop_reason(trainer: L.Trainer) -> str | None:
    """Why training ended: ``max_cpu_time``, ``early_stopping``, ``max_steps``, ``max_time``,
    ``max_epochs``, or None (interrupted, or no limit recognised)."""
    callbacks = trainer.callbacks  # type: ignore[attr-defined]  # set in Trainer.__init__, unseen by mypy
    if any(isinstance(cb, CpuTimeBudget) and cb.stopped for cb in callbacks):
        return "max_cpu_time"
    if any(isinstance(cb, EarlyStopping) and cb.stopped_epoch > 0 for cb in callbacks):
        return "early_stopping"
    if 0 < trainer.max_steps <= trainer.global_step:
        return "max_steps"
    timer = next((cb for cb in callbacks if isinstance(cb, Timer)), None)
    if timer is not None and (timer.time_remaining() or 0.0) <= 0.0:
        return "max_time"
    if trainer.max_epochs is not None and 0 < trainer.max_epochs <= trainer.current_epoch:
        return "max_epochs"
    return None


def run_summary(
    task: str,
    metrics: Mapping[str, float],
    global_step: int,
    epoch: int,
    clock: TrainingClock | None,
    stopped_by: str | None,
) -> dict[str, Any]:
    """The content of ``results.json`` (see the module docstring)."""
    return {
        "task": task,
        "global_step": int(global_step),
        "epoch": int(epoch),
        "train_time_s": round(clock.wall_s(), 2) if clock is not None else None,
        "train_cpu_s": round(clock.cpu_s(), 2) if clock is not None else None,
        "stopped_by": stopped_by,
        "metrics": {name: float(value) for name, value in sorted(metrics.items())},
    }


def write_run_summary(run_dir: str | Path, summary: Mapping[str, Any]) -> Path:
    """Write ``RUN/results.json`` whole or not at all (a temporary file, then a rename)."""
    path = Path(run_dir) / RESULTS_FILE
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)
    return path
