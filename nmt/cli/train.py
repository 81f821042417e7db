"""Hydra entry point: ``python -m nmt.train [overrides]``.

Composes the config, checks it, builds data, task and trainer, fits, tests the best
checkpoint, and writes the final metrics, steps and training time to ``RUN/results.json``
(:mod:`nmt.training.run_summary`). No model code lives here.

User errors (a bad override or value, a missing corpus, a damaged or mismatched checkpoint)
are one line on stderr and exit status 2; a run that fails while running (it diverged, or the
disk filled) exits with 1. In a ``-m`` sweep a failing job logs its
one line and returns None, and the other jobs go on. ``HYDRA_FULL_ERROR=1`` shows the full
traceback instead.

A run returns its task's monitored dev metric (``val/bleu``, ``val/f1``, ``val/ppl``, ...),
what a sweeper optimises.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any, cast

import hydra
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from nmt.cli.common import EXIT_RUNTIME_ERROR, EXIT_USER_ERROR
from nmt.cli.next_steps import next_steps_message
from nmt.config.checks import ConfigError, moved_key_error
from nmt.config.location import CONF_DIR
from nmt.training.latest_run import LATEST_NAME, update_latest_run

log = logging.getLogger("nmt.train")

PROG = "python -m nmt.train"
# Hydra's default run directories are outputs/NAME/TIMESTAMP under the working directory; the
# newest is also outputs/latest.
OUTPUTS_DIR = Path("outputs")


def _run_dir(ckpt_path: Any, fresh: str) -> str:
    """``hydra.run.dir``: a resumed run keeps writing into its own directory. (torch and the
    training code are imported only once a run starts, so that ``--help`` stays fast.)"""
    from nmt.training.run_config import run_dir_resolver

    return run_dir_resolver(ckpt_path, fresh)


OmegaConf.register_new_resolver("nmt_run_dir", _run_dir, replace=True)


def silence_known_warnings() -> None:
    """Warnings that are wrong or unactionable here. Called after Lightning is imported:
    its import installs warning filters of its own, which would take precedence."""
    # Our batch sampler continues an interrupted epoch by itself (nmt.training.resume).
    warnings.filterwarnings("ignore", message=".*dataloader is not resumable.*")
    # Evaluation metrics are reduced across DDP ranks by the tasks (nmt.training.distributed).
    warnings.filterwarnings("ignore", message=r".*It is recommended to use `self.log\('(val|test)/.*sync_dist=True.*")
    # A deprecation inside Lightning's own code.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated.*")


class _DropTips(logging.Filter):
    """Lightning's advertisements ("Tip: ... try installing litlogger") are not our log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


def route_lightning_logs() -> None:
    """Under Hydra, Lightning's messages go through Hydra's handlers (console and train.log)
    once, instead of also through Lightning's own console handler (installed when Lightning
    is imported), which printed each twice."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_DropTips())


def run_directory(cfg: DictConfig) -> Path:
    """Hydra's run dir when launched through Hydra, else ``cfg.run_dir`` (tests, notebooks)."""
    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path(cfg.get("run_dir") or "outputs/run")


def is_rank_zero() -> bool:
    """True outside DDP and in rank 0; the other ranks reuse what rank 0 prepared."""
    return os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("NODE_RANK", "0") == "0"


def default_config() -> DictConfig:
    """``conf/`` composed with no command-line overrides (what the user did not ask for)."""
    if GlobalHydra.instance().is_initialized():
        return hydra.compose(config_name="config", overrides=[])
    with hydra.initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra.compose(config_name="config", overrides=[])


def command_line_keys() -> set[str]:
    """The dotted keys of this run's command-line overrides, when launched through Hydra."""
    if not HydraConfig.initialized():
        return set()
    from nmt.training.run_config import overridden_keys

    return overridden_keys(list(HydraConfig.get().overrides.task), CONF_DIR)


def prepare_config(cfg: DictConfig) -> DictConfig:
    """The config this run trains with: the checkpoint's on resume, checked either way."""
    from nmt.tasks.preflight import check_run_config
    from nmt.training.run_config import resumed_config

    command_line = command_line_keys()
    if cfg.get("ckpt_path"):
        cfg = resumed_config(cfg, default_config(), command_line)
    return check_run_config(cfg, command_line)


def train(cfg: DictConfig) -> dict[str, float]:
    """Train (or resume) the experiment described by ``cfg``; return the final metrics.

    :raises TrainingDiverged: the run stopped on non-finite or exploding losses or gradients.
    :raises DiskFull: the disk filled while the run wrote a file.
    """
    return fit(prepare_config(cfg))


def fit(cfg: DictConfig) -> dict[str, float]:
    """Train the run of a config from :func:`prepare_config`; return the final metrics.

    :raises DiskFull: the disk filled while the run wrote a file (a checkpoint, the curves, a
        logger's files, the run summary); the message names the checkpoints to resume from.
    """
    from nmt.training.checkpointing import is_disk_full, run_disk_full

    try:
        return _fit(cfg)
    except OSError as error:
        if not is_disk_full(error):
            raise
        raise run_disk_full(error, run_directory(cfg) / "checkpoints") from error


def _fit(cfg: DictConfig) -> dict[str, float]:
    run_dir = run_directory(cfg)
    if is_rank_zero():
        run_dir.mkdir(parents=True, exist_ok=True)
        update_latest_run(run_dir, OUTPUTS_DIR)
    if cfg.task == "baseline":  # scikit-learn, one pass: no Lightning loop
        from nmt.training.baseline import train_baseline

        return train_baseline(cfg, run_dir)
    import lightning as L  # heavy imports after the config checks: a bad config fails fast
    import torch

    from nmt.inference.checkpoint import checkpoint_tokenizers, load_checkpoint
    from nmt.training.divergence import TrainingDiverged

    if HydraConfig.initialized():
        route_lightning_logs()
    from nmt.ops.softmax import keep_flushing_subnormals
    from nmt.tasks import registry
    from nmt.training.run_summary import TrainingClock, run_summary, stop_reason, write_run_summary
    from nmt.training.trainer import build_trainer, find_callback

    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    keep_flushing_subnormals()  # this thread runs the training steps (nmt/ops/softmax.py says why)

    silence_known_warnings()

    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
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

    config = cast(dict[str, Any], OmegaConf.to_container(cfg, resolve=True))
    task = task_spec.task(config, tokenizers)
    trainer = build_trainer(config, run_dir, task.monitor, task.monitor_mode)
    trainer.fit(task, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    if task.divergence:
        raise TrainingDiverged(task.divergence)
    metrics: dict[str, Any] = {k: float(v) for k, v in trainer.callback_metrics.items()}
    # Read before the test: testing best.ckpt restores the callbacks' state of that earlier step
    # (an early stop's stopped_epoch back to 0, the training clock's earlier seconds).
    stopped_by = stop_reason(trainer)
    running_clock = find_callback(trainer, TrainingClock)
    clock = running_clock.snapshot() if running_clock is not None else None
    if cfg.get("test_after_training") and not trainer.interrupted:
        best = getattr(trainer.checkpoint_callback, "best_model_path", None) or None
        tested = trainer.test(task, datamodule=datamodule, ckpt_path=best)
        for result in tested:
            metrics.update({k: float(v) for k, v in result.items()})
    if is_rank_zero():
        summary = run_summary(str(cfg.task), metrics, trainer.global_step, trainer.current_epoch, clock, stopped_by)
        write_run_summary(run_dir, summary)
    log.info("run directory: %s", run_dir)
    return metrics


def one_line(error: BaseException) -> str:
    """An error message on one line (Hydra's and OmegaConf's span several)."""
    text = str(error).strip() or type(error).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith(("full_key:", "object_type=", "reference_type="))]
    return " ".join(lines)


def fail(error: BaseException, status: int) -> None:
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        raise error
    print(f"{PROG}: error: {one_line(error)}", file=sys.stderr, flush=True)
    sys.exit(status)


def runtime_failures() -> tuple[type[BaseException], ...]:
    """The run itself failed; the user's inputs were fine (exit 1)."""
    from nmt.training.checkpointing import DiskFull
    from nmt.training.divergence import TrainingDiverged

    return (TrainingDiverged, DiskFull)


def user_errors() -> tuple[type[BaseException], ...]:
    """A bad config, corpus or checkpoint (exit 2)."""
    from nmt.inference.checkpoint import CheckpointError

    return (ConfigError, CheckpointError, ValueError, OSError)


def monitored_metric(task: str) -> str:
    """The dev metric that selects ``task``'s best checkpoint, under the name train() returns."""
    if task == "baseline":
        from nmt.training.baseline import MONITORED_METRIC

        return MONITORED_METRIC
    from nmt.tasks import registry

    return registry.get(task).monitor


def in_sweep() -> bool:
    """True in a job of a ``-m`` (multirun) sweep."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def sweep_job_failed(error: BaseException) -> None:
    """A failed job of a sweep: its one line in the log (and its train.log), then the next job."""
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        raise error
    log.error("job %s failed: %s", HydraConfig.get().job.num, one_line(error))


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def hydra_main(cfg: DictConfig) -> float | None:
    """One run: its monitored dev metric, or None when a sweep's job failed or the run
    did not report it. Outside a sweep a failure exits (2: user error, 1: the run failed)."""
    try:
        cfg = prepare_config(cfg)  # on resume the checkpoint's config, hence its task
        metrics = fit(cfg)
    except Exception as error:
        runtime = runtime_failures()
        if not isinstance(error, (*runtime, *user_errors())):
            raise
        if in_sweep():
            sweep_job_failed(error)
            return None
        fail(error, EXIT_RUNTIME_ERROR if isinstance(error, runtime) else EXIT_USER_ERROR)
    if not in_sweep() and is_rank_zero():
        print(next_steps_message(run_directory(cfg), str(cfg.task), latest_link_of(run_directory(cfg))), flush=True)
    return metrics.get(monitored_metric(str(cfg.task)))


def latest_link_of(run_dir: Path) -> Path | None:
    """``outputs/latest`` when it points at ``run_dir`` (a symlink, or the file that holds its path)."""
    latest = OUTPUTS_DIR / LATEST_NAME
    if latest.is_symlink() or latest.is_dir():
        return latest if latest.resolve() == run_dir.resolve() else None
    if latest.is_file():
        return latest if latest.read_text(encoding="utf-8").strip() == str(run_dir.resolve()) else None
    return None


HYDRA_FLAGS = (
    "-cp",
    "--config-path",
    "-cn",
    "--config-name",
    "-cd",
    "--config-dir",
    "--experimental-rerun",
    "-h",
    "--help",
    "--hydra-help",
    "-c",
    "--cfg",
    "-i",
    "--info",
    "-m",
    "--multirun",
    "--run",
    "-p",
    "--package",
    "--shell-completion",
    "-sc",
    "--resolve",
    "--version",
)


def check_overrides(argv: list[str]) -> None:
    """Compose the config from the command line before Hydra does, so that a bad override is
    one line and exit status 2 instead of Hydra's multi-line report (skipped when Hydra's
    own flags are used, e.g. by Lightning's DDP launcher)."""
    for arg in argv:
        if (moved := moved_key_error(arg.split("=")[0])) is not None:
            fail(moved, EXIT_USER_ERROR)
    if any(arg.split("=")[0] in HYDRA_FLAGS for arg in argv):
        return
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        with hydra.initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            hydra.compose(config_name="config", overrides=list(argv))
    except (HydraException, OmegaConfBaseException, ValueError) as error:
        fail(error, EXIT_USER_ERROR)


def main() -> None:
    check_overrides(sys.argv[1:])
    hydra_main()


if __name__ == "__main__":
    main()
