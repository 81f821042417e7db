"""Measure training throughput (target tokens per second) of a translation experiment.

    python scripts/bench_train.py --data /path/to/fra.txt.xz [--experiment spm_bahdanau]
        [--steps 200] [--warmup 20] [--threads 2] [--device cpu] [override ...]

Runs real training steps (forward, backward, gradient clipping, Adam) on length-bucketed
batches of the experiment's training split, exactly as ``python -m nmt.train`` would, but
without validation, logging or checkpoints, and prints one JSON line with the figures.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from hydra import compose, initialize_config_dir

from nmt.data.translation_datamodule import TranslationDataModule
from nmt.tasks.optim import build_optimizer
from nmt.tasks.translation import TranslationTask, sequence_loss

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="fra.txt[.xz|.gz] or fra-eng.zip")
    parser.add_argument("--experiment", default="spm_bahdanau")
    parser.add_argument("--steps", type=int, default=200, help="timed steps")
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. model.hidden_size=512")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment={args.experiment}", f"data.path={args.data}", *args.overrides])
    torch.manual_seed(int(cfg.seed))
    datamodule = TranslationDataModule(cfg.data, cfg.tokenizer, seed=int(cfg.seed))
    datamodule.setup("fit")
    from omegaconf import OmegaConf

    task = TranslationTask(OmegaConf.to_container(cfg, resolve=True), *datamodule.build_tokenizers())
    model = task.to(args.device).train()
    optimizer = build_optimizer(model.parameters(), cfg.optim)
    loader = iter(datamodule.train_dataloader())
    tokens, seconds = 0, 0.0
    for step in range(args.warmup + args.steps):
        batch = next(loader)
        batch = batch.to(args.device)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        logits, targets = task.real_token_logits(batch)
        loss_sum, count = sequence_loss(logits, targets, task.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        (loss_sum / count).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), float(cfg.trainer.gradient_clip_val))
        optimizer.step()
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        if step >= args.warmup:
            seconds += time.perf_counter() - start
            tokens += count
    report = {
        "experiment": args.experiment,
        "overrides": args.overrides,
        "device": args.device,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "batch_size": int(cfg.data.batch_size),
        "steps": args.steps,
        "target_tokens": tokens,
        "seconds": round(seconds, 2),
        "target_tokens_per_s": round(tokens / seconds, 1),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
