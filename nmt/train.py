"""Hydra entry point: ``python -m nmt.train [overrides]``.

Composes the config, checks it, builds data, task, callbacks, loggers and trainer, fits,
and tests the best checkpoint. No model code lives here.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

from nmt.callbacks import LatestCheckpoint, TokenThroughput
from nmt.checkpoint import checkpoint_tokenizers, load_checkpoint
from nmt.config import validate_config
from nmt.tasks import registry

log = logging.getLogger("nmt.train")

# Lightning cannot see that our batch sampler continues an interrupted epoch by itself
# (nmt.data.batching.resume_mid_epoch; tested to give the same weights as an uninterrupted run).
warnings.filterwarnings("ignore", message=".*dataloader is not resumable.*")


def run_directory(cfg: DictConfig) -> Path:
    """Hydra's run dir when launched through Hydra, else ``cfg.run_dir`` (tests, notebooks)."""
    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path(cfg.get("run_dir") or "outputs/run")


def is_rank_zero() -> bool:
    """True outside DDP and in rank 0; the other ranks reuse what rank 0 prepared."""
    return os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("NODE_RANK", "0") == "0"


def build_callbacks(cfg: DictConfig, run_dir: Path, monitor: str, mode: str) -> list[L.Callback]:
    callbacks: list[L.Callback] = [
        ModelCheckpoint(
            dirpath=run_dir / "checkpoints",
            filename="best",
            monitor=monitor,
            mode=mode,
            save_top_k=1,
            auto_insert_metric_name=False,
            enable_version_counter=False,
        ),
        LatestCheckpoint(run_dir / "checkpoints"),
        LearningRateMonitor(logging_interval="step"),
        TokenThroughput(window=int(cfg.trainer.get("log_every_n_steps") or 50)),
    ]
    patience = cfg.get("early_stopping", {}).get("patience")
    if patience:
        callbacks.append(EarlyStopping(monitor=monitor, mode=mode, patience=int(patience)))
    return callbacks


def train(cfg: DictConfig) -> dict[str, float]:
    """Train (or resume) the experiment described by ``cfg``; return the final metrics."""
    validate_config(cfg)
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    L.seed_everything(int(cfg.seed), workers=True)
    run_dir = run_directory(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    task_spec = registry.get(cfg.task)

    tokenizers = None
    if cfg.get("ckpt_path"):
        # Resume with the very tokenizers the weights were trained with.
        tokenizers = tuple(checkpoint_tokenizers(load_checkpoint(cfg.ckpt_path)).values())
    elif not is_rank_zero() and (run_dir / registry.TOKENIZERS_FILE).is_file():
        tokenizers = registry.load_tokenizers(run_dir / registry.TOKENIZERS_FILE)
    datamodule = task_spec.datamodule(cfg, tokenizers)
    tokenizers = datamodule.build_tokenizers()
    if is_rank_zero():
        registry.save_tokenizers(tokenizers, run_dir / registry.TOKENIZERS_FILE)
        OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)

    config = OmegaConf.to_container(cfg, resolve=True)
    task = task_spec.task(config, tokenizers)
    trainer = L.Trainer(
        **OmegaConf.to_container(cfg.trainer, resolve=True),
        default_root_dir=str(run_dir),
        callbacks=build_callbacks(cfg, run_dir, task_spec.monitor, task_spec.mode),
        logger=[
            TensorBoardLogger(str(run_dir), name="tensorboard", version=""),
            CSVLogger(str(run_dir), name="csv", version=""),
        ],
        use_distributed_sampler=False,  # our bucket sampler shards batches itself
    )
    trainer.fit(task, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    metrics: dict[str, Any] = {k: float(v) for k, v in trainer.callback_metrics.items()}
    if cfg.get("test_after_training") and not trainer.interrupted:
        best = trainer.checkpoint_callback.best_model_path or None
        tested = trainer.test(task, datamodule=datamodule, ckpt_path=best)
        for result in tested:
            metrics.update({k: float(v) for k, v in result.items()})
    log.info("run directory: %s", run_dir)
    return metrics


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    metrics = train(cfg)
    return metrics.get("val/bleu")


if __name__ == "__main__":
    main()
