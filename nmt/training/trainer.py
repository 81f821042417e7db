"""Build the ``lightning.Trainer`` of a run from the ``trainer`` config group (Lightning's
keyword arguments) and the ``training`` section (nmt's own loop settings):

* ``training.save_every_minutes``: timed refresh of ``last.ckpt`` (:class:`LatestCheckpoint`);
* ``training.max_cpu_time``: a budget of the training process's CPU time (:class:`CpuTimeBudget`);
* ``training.nonfinite_patience``: consecutive non-finite steps that stop the run (read by the task);
* ``training.exploding_loss_factor``, ``training.exploding_loss_patience``: consecutive steps with
  a loss that many times above a uniform guess's that stop the run (read by the task);
* ``training.progress_every_n_steps``: plain progress lines when there is no progress bar;
* ``training.average_last``: write ``average.ckpt``, the mean weights of the last N validations;
* ``trainer.enable_progress_bar: auto``: a bar on a terminal, plain lines otherwise.

The ``logger`` group picks the metric loggers (:func:`~nmt.training.loggers.build_loggers`).
Every run also writes its learning curves, ``curves.jsonl`` and ``curves.png``
(:class:`~nmt.training.curves.LearningCurves`), and keeps the wall-clock and CPU time of its
training (:class:`~nmt.training.run_summary.TrainingClock`) for ``results.json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.plugins.precision import MixedPrecision

from nmt.training.averaging import WeightAverage
from nmt.training.checkpointing import AtomicCheckpointIO, LatestCheckpoint
from nmt.training.cpu_budget import CpuTimeBudget, parse_duration
from nmt.training.curves import LearningCurves
from nmt.training.loggers import build_loggers
from nmt.training.progress import ProgressLines, TokenThroughput, progress_bar_wanted
from nmt.training.resume import ResumeState
from nmt.training.run_summary import TrainingClock
from nmt.training.validation import ScheduledEarlyStopping


def runs_on_cpu(trainer_cfg: Mapping[str, Any]) -> bool:
    accelerator = str(trainer_cfg.get("accelerator") or "auto")
    return accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())


def precision_arguments(trainer_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """``precision=...`` for Lightning, or an explicit plugin where Lightning would not do
    what was asked: it silently turns ``16-mixed`` on a CPU into bf16, while torch runs fp16
    autocast and loss scaling on a CPU too (how the fp16 path is tested without a GPU)."""
    precision = str(trainer_cfg.get("precision") or "32-true")
    if precision in ("16-mixed", "16") and runs_on_cpu(trainer_cfg):
        return {"plugins": [MixedPrecision("16-mixed", "cpu")]}
    return {"precision": precision}


def build_callbacks(
    cfg: Mapping[str, Any], run_dir: Path, monitor: str, mode: str, progress_bar: bool
) -> list[L.Callback]:
    trainer_cfg, training = cfg["trainer"], cfg["training"]
    checkpoints = Path(run_dir) / "checkpoints"
    callbacks: list[L.Callback] = [
        ResumeState(),
        ModelCheckpoint(
            dirpath=checkpoints,
            filename="best",
            monitor=monitor,
            mode=mode,
            save_top_k=1,
            auto_insert_metric_name=False,
            enable_version_counter=False,
        ),
        LatestCheckpoint(checkpoints, training["save_every_minutes"]),
        LearningRateMonitor(logging_interval="step"),
        TokenThroughput(window=int(trainer_cfg.get("log_every_n_steps") or 50)),
        LearningCurves(run_dir, every_n_steps=int(trainer_cfg.get("log_every_n_steps") or 50)),
        TrainingClock(),
    ]
    if not progress_bar:
        callbacks.append(ProgressLines(int(training["progress_every_n_steps"])))
    if int(training["average_last"]) > 1:
        callbacks.append(WeightAverage(checkpoints, int(training["average_last"])))
    if training["max_cpu_time"]:
        callbacks.append(CpuTimeBudget(parse_duration(training["max_cpu_time"])))
    patience = (cfg.get("early_stopping") or {}).get("patience")
    if patience:
        callbacks.append(ScheduledEarlyStopping(monitor=monitor, mode=mode, patience=int(patience)))
    return callbacks


def build_trainer(cfg: Mapping[str, Any], run_dir: Path, monitor: str, mode: str) -> L.Trainer:
    """The Trainer for ``cfg`` (the whole resolved run config, as plain containers)."""
    arguments = dict(cfg["trainer"])
    progress_bar = progress_bar_wanted(arguments.pop("enable_progress_bar", "auto"))
    arguments.pop("precision", None)
    arguments.update(precision_arguments(cfg["trainer"]))
    arguments.setdefault("plugins", [])
    arguments["plugins"] = [*arguments["plugins"], AtomicCheckpointIO()]
    return L.Trainer(
        **arguments,
        enable_progress_bar=progress_bar,
        default_root_dir=str(run_dir),
        callbacks=build_callbacks(cfg, run_dir, monitor, mode, progress_bar),
        logger=build_loggers(cfg["logger"], run_dir, str(cfg["name"])),
        use_distributed_sampler=False,  # our bucket sampler shards batches itself
    )


def find_callback(trainer: L.Trainer, kind: type) -> Any:
    callbacks = trainer.callbacks  # type: ignore[attr-defined]  # set in Trainer.__init__, unseen by mypy
    return next((cb for cb in callbacks if isinstance(cb, kind)), None)
