"""The run's metric loggers, from the ``logger`` config group (conf/logger/*.yaml).

Every run also writes ``curves.jsonl`` (:class:`~nmt.training.curves.LearningCurves`); the
loggers here add TensorBoard, W&B or MLflow, and ``csv/metrics.csv`` unless ``logger.csv``
is false. The config checks have already made sure an optional logger's package is there.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger

DEFAULT_PROJECT = "nmt"
"""The W&B project / MLflow experiment when ``logger.project`` is null."""


def build_loggers(logger_cfg: Mapping[str, Any], run_dir: Path, run_name: str) -> list[Logger]:
    """The loggers ``logger_cfg`` (the ``logger`` section, plain values) asks for, writing under ``run_dir``."""
    run_dir = Path(run_dir)
    kind = logger_cfg["name"]
    project = logger_cfg["project"] or DEFAULT_PROJECT
    loggers: list[Logger] = []
    if kind == "tensorboard":
        loggers.append(TensorBoardLogger(str(run_dir), name="tensorboard", version=""))
    elif kind == "wandb":
        from lightning.pytorch.loggers import WandbLogger

        loggers.append(
            WandbLogger(name=run_name, project=project, save_dir=str(run_dir), offline=logger_cfg["offline"])
        )
    elif kind == "mlflow":
        from lightning.pytorch.loggers import MLFlowLogger

        loggers.append(
            MLFlowLogger(
                experiment_name=project,
                run_name=run_name,
                tracking_uri=logger_cfg["tracking_uri"] or (run_dir / "mlruns").resolve().as_uri(),
            )
        )
    if logger_cfg["csv"] or kind == "csv":
        loggers.append(CSVLogger(str(run_dir), name="csv", version=""))
    return loggers
