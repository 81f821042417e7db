"""Measure training throughput (target tokens per second) of an experiment, through the very
Lightning Trainer that ``python -m nmt.train`` builds (precision plugin, clipping, fused or
foreach Adam, the non-finite guard), with validation and checkpoints left out of the clock.

    python scripts/bench_train.py --data /path/to/fra.txt.xz [--experiment spm_bahdanau]
        [--steps 200] [--warmup 20] [--threads 1] [--device cpu|cuda] [override ...]
    python scripts/bench_train.py --data ../shared/data/fra.txt.xz --threads 1 trainer.precision=bf16-mixed
    python scripts/bench_train.py --data ../shared/data/fra.txt.xz trainer.precision=16-mixed optim.fused=false

The clock runs from each training batch's start to its end (forward, backward, clipping,
optimiser step) and skips the first ``--warmup`` batches. Prints one JSON line.

``--init CKPT`` starts from a trained checkpoint's weights (and tokenizers and config): a
trained model's outputs are far more peaked than a fresh one's, which changes the cost of the
softmax (subnormal ``exp`` results are slow on x86), so this is what a long run spends.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from nmt.config.checks import validate_config
from nmt.inference.checkpoint import checkpoint_config, checkpoint_tokenizers, load_checkpoint, model_state_dict
from nmt.tasks import registry
from nmt.training.run_config import moved_keys_renamed
from nmt.training.trainer import build_trainer

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


class StepClock(L.Callback):
    """Seconds and target tokens of the training batches after the first ``warmup``."""

    def __init__(self, warmup: int, device: str) -> None:
        self.warmup, self.device = warmup, device
        self.seconds, self.tokens, self.steps, self._start, self._seen = 0.0, 0, 0, 0.0, 0

    def _sync(self) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._sync()
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._sync()
        self._seen += 1
        if self._seen > self.warmup:
            self.seconds += time.perf_counter() - self._start
            self.tokens += batch.num_target_tokens
            self.steps += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="fra.txt[.xz|.gz] or fra-eng.zip")
    parser.add_argument("--experiment", default="spm_bahdanau")
    parser.add_argument("--steps", type=int, default=200, help="timed steps")
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--init", help="start from this checkpoint's weights, tokenizers and config")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. trainer.precision=bf16-mixed")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    bench = [
        f"trainer.accelerator={'gpu' if args.device == 'cuda' else 'cpu'}",
        f"trainer.max_steps={args.warmup + args.steps}",
        "trainer.max_time=null",
        "trainer.limit_val_batches=0",
        "trainer.num_sanity_val_steps=0",
        "trainer.enable_progress_bar=false",
        "training.save_every_minutes=0",
        "early_stopping.patience=null",
        "test_after_training=false",
    ]
    checkpoint = load_checkpoint(args.init) if args.init else None
    if checkpoint is None:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(
                "config", overrides=[f"experiment={args.experiment}", f"data.path={args.data}", *bench, *args.overrides]
            )
    else:  # the checkpoint's own run, with this benchmark's settings (dotted keys) on top
        cfg = OmegaConf.merge(
            OmegaConf.create(moved_keys_renamed(checkpoint_config(checkpoint))),
            OmegaConf.from_dotlist([f"data.path={args.data}", "ckpt_path=null", *bench, *args.overrides]),
        )
    cfg = validate_config(cfg)
    L.seed_everything(int(cfg.seed), verbose=False)
    spec = registry.get(cfg.task)
    tokenizers = tuple(checkpoint_tokenizers(checkpoint).values()) if checkpoint is not None else None
    datamodule = spec.datamodule(cfg, tokenizers)
    tokenizers = datamodule.build_tokenizers()
    config = OmegaConf.to_container(cfg, resolve=True)
    task = spec.task(config, tokenizers)
    if checkpoint is not None:
        task.model.load_state_dict(model_state_dict(checkpoint))
    clock = StepClock(args.warmup, args.device)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = build_trainer(config, Path(run_dir), task.monitor, task.monitor_mode)
        trainer.callbacks.append(clock)
        trainer.fit(task, datamodule=datamodule)
    report = {
        "experiment": args.experiment,
        "init": args.init,
        "overrides": args.overrides,
        "device": args.device,
        "precision": str(cfg.trainer.precision),
        "fused_adam": bool(cfg.optim.get("fused", True)),
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "batch_size": int(cfg.data.batch_size),
        "batch_unit": str(cfg.data.get("batch_unit", "sentences")),
        "steps": clock.steps,
        "target_tokens": clock.tokens,
        "seconds": round(clock.seconds, 2),
        "target_tokens_per_s": round(clock.tokens / max(clock.seconds, 1e-9), 1),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
