"""Learning curves of a run: ``RUN/curves.jsonl`` and ``RUN/curves.png``.

Every training run records, against the optimiser step and the training wall-clock time
(validation included, counted over resumes like ``trainer.max_time``):

* the mean training loss over each ``log_every_n_steps`` steps (a ``"train"`` point);
* the dev metrics at every validation (a ``"val"`` point: ``val/bleu``, ``val/loss``, ...).

``curves.jsonl`` holds one JSON object per point and is appended to as training goes;
``curves.png`` is redrawn after every validation and at the end. A resumed run first drops
the points recorded after its checkpoint (a killed run replays those steps).
``nmt/cli/compare_runs.py RUN...`` overlays the curves of several runs.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch

log = logging.getLogger("nmt.train")

CURVES_FILE = "curves.jsonl"
PLOT_FILE = "curves.png"
# The dev metric drawn, the first one a run has (translation, classification, language model).
DEV_METRICS = ("val/bleu", "val/acc", "val/ppl", "val/loss")
AXIS_LABELS = {
    "val/bleu": "dev BLEU (greedy)",
    "val/acc": "dev accuracy",
    "val/ppl": "dev perplexity",
    "val/loss": "dev loss",
}


class LearningCurves(L.Callback):
    """Records the points of ``curves.jsonl`` and draws ``curves.png`` (rank 0 only).

    The training loss is summed on the device and read once per interval, so recording it
    adds no host synchronisation to the training steps.
    """

    def __init__(self, run_dir: str | Path, every_n_steps: int = 50, plot: bool = True) -> None:
        self.path = Path(run_dir) / CURVES_FILE
        self.plot_path = Path(run_dir) / PLOT_FILE
        self.every_n_steps = max(1, int(every_n_steps))
        self.plot = plot
        self.elapsed_before_s = 0.0
        self._started: float | None = None
        self._loss_sum: torch.Tensor | None = None
        self._loss_count = 0
        self._last_step = -1

    def elapsed_s(self) -> float:
        """Training wall-clock seconds so far, earlier runs of a resumed run included."""
        running = time.monotonic() - self._started if self._started is not None else 0.0
        return self.elapsed_before_s + running

    # -- recording -------------------------------------------------------------------------
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.monotonic()
        if trainer.is_global_zero:
            kept = [p for p in read_curves(self.path) if p["step"] <= trainer.global_step]
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text("".join(json.dumps(p) + "\n" for p in kept), encoding="utf-8")

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if isinstance(loss, torch.Tensor):
            loss = loss.detach().float()
            self._loss_sum = loss if self._loss_sum is None else self._loss_sum + loss
            self._loss_count += 1
        step = trainer.global_step
        if step == self._last_step or step % self.every_n_steps or not self._loss_count:
            return
        self._last_step = step
        assert self._loss_sum is not None  # summed with every counted loss
        mean = float(self._loss_sum) / self._loss_count
        self._loss_sum, self._loss_count = None, 0
        if trainer.is_global_zero:
            self._append({"kind": "train", "step": step, "time_s": round(self.elapsed_s(), 2), "train/loss": mean})

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        metrics = {
            name: float(value)
            for name, value in trainer.callback_metrics.items()
            if name.startswith("val/") and torch.as_tensor(value).numel() == 1
        }
        if not metrics:
            return
        self._append({"kind": "val", "step": trainer.global_step, "time_s": round(self.elapsed_s(), 2), **metrics})
        self._draw()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            self._draw()

    def state_dict(self) -> dict[str, Any]:
        return {"elapsed_s": self.elapsed_s()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.elapsed_before_s = float(state_dict.get("elapsed_s", 0.0))

    def _append(self, point: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as stream:
            stream.write(json.dumps(point) + "\n")

    def _draw(self) -> None:
        if not self.plot:
            return
        points = read_curves(self.path)
        if not points:
            return
        try:
            plot_curves({self.path.parent.name: points}, self.plot_path)
        except Exception as error:  # a plot must never end a training run
            log.warning("could not draw %s: %s", self.plot_path, error)


def read_curves(path: str | Path) -> list[dict[str, Any]]:
    """The points of a ``curves.jsonl`` (a missing file has none; a torn last line is skipped)."""
    path = Path(path)
    if not path.exists():
        return []
    points = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            point = json.loads(line)
        except json.JSONDecodeError:
            continue  # the line a kill cut short
        if isinstance(point, dict) and "step" in point and "time_s" in point:
            points.append(point)
    return points


def dev_metric(points: Sequence[Mapping[str, Any]]) -> str | None:
    """The dev metric to draw: the first of :data:`DEV_METRICS` the points have."""
    names = {name for p in points if p.get("kind") == "val" for name in p}
    return next((name for name in DEV_METRICS if name in names), None)


def plot_curves(runs: Mapping[str, Sequence[Mapping[str, Any]]], path: str | Path, metric: str | None = None) -> Path:
    """Draw train loss and a dev metric against wall-clock minutes and steps, one line per run.

    :param runs: run label -> its points (:func:`read_curves`).
    :param metric: the dev metric (default: :func:`dev_metric` of the first run that has one).
    :return: ``path``, a PNG of 2 x 2 panels.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if metric is None:
        metric = next((m for m in (dev_metric(points) for points in runs.values()) if m), None)
    metric_key = metric or ""  # no dev metric: no dev points
    figure, axes = plt.subplots(2, 2, figsize=(11, 7.5), squeeze=False)
    for label, points in runs.items():
        train = [p for p in points if p.get("kind") == "train" and "train/loss" in p]
        dev = [p for p in points if p.get("kind") == "val" and metric_key in p]
        for column, x in enumerate(("time_s", "step")):
            scale = 60.0 if x == "time_s" else 1.0
            axes[0][column].plot(
                [p[x] / scale for p in train], [p["train/loss"] for p in train], label=label, linewidth=1
            )
            axes[1][column].plot(
                [p[x] / scale for p in dev],
                [p[metric_key] for p in dev],
                marker="o",
                markersize=3,
                label=label,
                linewidth=1.2,
            )
    for column, xlabel in enumerate(("wall-clock minutes (training + validation)", "optimiser steps")):
        axes[0][column].set_ylabel("train loss (label-smoothed)")
        axes[1][column].set_ylabel(AXIS_LABELS.get(metric_key, metric or "dev metric"))
        for row in range(2):
            axes[row][column].set_xlabel(xlabel)
            axes[row][column].grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
