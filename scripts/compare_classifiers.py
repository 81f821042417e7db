"""Train classifier variants of one preset over several seeds under one budget, and tabulate
their test accuracy: the "base LSTM vs + dropout vs bidirectional vs + attention vs GRU vs
vanilla RNN" table.

    python scripts/compare_classifiers.py --experiment sms_bilstm_attn --seeds 1 2 3 \\
        --max-cpu-time 00:00:10:00 --threads 1 --output comparisons/sms data.path=../shared/data/SMSSpamCollection.gz
    python scripts/compare_classifiers.py --experiment imdb_bilstm_attn --seeds 1 --max-cpu-time 00:00:05:00 \\
        --output comparisons/imdb model.embed_size=128 model.hidden_size=128 --variants base bi_attention gru
    python scripts/compare_classifiers.py --list

Each variant (:data:`VARIANTS`, ``--list`` prints them) is a few Hydra overrides of the
classifier config (``model.cell``, ``model.bidirectional``, ``model.dropout``,
``model.recurrent_dropout``, ``model.pooling``) on top of the preset and of the extra overrides
given after the options. Every run is ``python -m nmt.train experiment=E seed=S threads=T
<budget> <overrides> <variant> hydra.run.dir=OUTPUT/VARIANT/seedS`` in a subprocess, its
console output in ``OUTPUT/VARIANT/seedS/console.log``.

The budget is the same for every run: ``--max-cpu-time DD:HH:MM:SS`` (``training.max_cpu_time``,
fair on a shared machine) or ``--max-steps N`` (``trainer.max_steps``); the preset's wall-clock
cap ``trainer.max_time`` is lifted, its ``max_epochs`` and early stopping stay (pass
``early_stopping.patience=null`` to train every run to the budget). Every run's config is
composed and checked before the first one trains, so a bad override costs nothing.

A run whose ``results.json`` (written by ``nmt.train``, :mod:`nmt.training.run_summary`)
exists is not run again: run the same command again to resume an interrupted comparison (an
unfinished run starts over). Writes ``OUTPUT/table.md`` (also printed: per variant the mean
test accuracy ± the standard deviation over seeds, each seed's, the mean steps and CPU
minutes, what stopped the runs: the budget, early stopping, max_epochs) and ``OUTPUT/results.json`` (every run's numbers). Exit status 1 if a run failed,
2 for a bad argument or override.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from nmt.cli.common import EXIT_RUNTIME_ERROR, OneLineArgumentParser, positive_int, run_command
from nmt.cli.train import one_line
from nmt.config.checks import ConfigError, moved_key_error
from nmt.config.location import CONF_DIR
from nmt.training.cpu_budget import parse_duration
from nmt.training.run_summary import RESULTS_FILE

PROG = "compare_classifiers.py"
METRIC = "test/acc"


@dataclass(frozen=True)
class Variant:
    """A row of the table: its label and the overrides that make it from the preset."""

    label: str
    overrides: tuple[str, ...]


def classifier(
    cell: str, bidirectional: bool, pooling: str, dropout: float, recurrent_dropout: float = 0.0
) -> tuple[str, ...]:
    """The overrides of one row. Each row states every key the table varies, so that none
    inherits the preset's value silently (sms_bilstm_attn has dropout 0.4, imdb_bilstm_attn 0.3)."""
    return (
        f"model.cell={cell}",
        f"model.bidirectional={str(bidirectional).lower()}",
        f"model.pooling={pooling}",
        f"model.dropout={dropout}",
        f"model.recurrent_dropout={recurrent_dropout}",
    )


# The table's rows, in order. model.hidden_size is the encoder's output size, split over the
# two directions of a bidirectional encoder: every row has the same output size, so a
# bidirectional row has fewer recurrent parameters than a unidirectional one, not more.
VARIANTS: dict[str, Variant] = {
    "base": Variant("LSTM, last state", classifier("lstm", False, "last", 0.0)),
    "dropout": Variant("+ dropout 0.3", classifier("lstm", False, "last", 0.3)),
    "recurrent_dropout": Variant("+ recurrent dropout 0.25", classifier("lstm", False, "last", 0.3, 0.25)),
    "bidirectional": Variant("BiLSTM, last states", classifier("lstm", True, "last", 0.3)),
    "bi_mean": Variant("BiLSTM + mean pooling", classifier("lstm", True, "mean", 0.3)),
    "bi_max": Variant("BiLSTM + max pooling", classifier("lstm", True, "max", 0.3)),
    "bi_attention": Variant("BiLSTM + attention (learned query)", classifier("lstm", True, "attention", 0.3)),
    "bi_final_state_attention": Variant(
        "BiLSTM + final-state attention", classifier("lstm", True, "final_state_attention", 0.3)
    ),
    "gru": Variant("BiGRU, last states", classifier("gru", True, "last", 0.3)),
    "rnn": Variant("vanilla BiRNN (tanh), last states", classifier("rnn", True, "last", 0.3)),
}


@dataclass(frozen=True)
class Run:
    """One training run: a variant with a seed, and its command-line overrides."""

    variant: str
    seed: int
    directory: Path
    overrides: tuple[str, ...]


def budget_overrides(max_cpu_time: str | None, max_steps: int | None) -> list[str]:
    """The budget every run gets; the preset's wall-clock cap is lifted."""
    if max_cpu_time is not None:
        parse_duration(max_cpu_time)  # a ValueError that names the format
        return [f"training.max_cpu_time={max_cpu_time}", "trainer.max_time=null"]
    return [f"trainer.max_steps={max_steps}", "trainer.max_time=null"]


def plan_runs(args: argparse.Namespace) -> list[Run]:
    """Every variant x seed, in table order, with the overrides ``nmt.train`` gets."""
    common = [
        f"experiment={args.experiment}",
        f"threads={args.threads}",
        *budget_overrides(args.max_cpu_time, args.max_steps),
        *args.overrides,
    ]
    return [
        Run(name, seed, args.output / name / f"seed{seed}", (*common, f"seed={seed}", *VARIANTS[name].overrides))
        for name in args.variants
        for seed in args.seeds
    ]


VARIANT_KEYS = frozenset(override.split("=")[0] for v in VARIANTS.values() for override in v.overrides)


def check_overrides(overrides: Sequence[str]) -> None:
    """The overrides for every run leave the keys that the variants set alone."""
    for override in overrides:
        key = override.split("=")[0].lstrip("+~")
        if key in VARIANT_KEYS:
            raise ConfigError(f"{key} is what the variants change: leave it out (--list shows each variant's value)")


def check_runs(experiment: str, runs: Sequence[Run]) -> None:
    """Compose and check every run's config as ``nmt.train`` will; raise ConfigError naming
    the preset or the run's variant, and the first problem."""
    from nmt.tasks.preflight import check_run_config

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        try:
            task = compose(config_name="config", overrides=[f"experiment={experiment}"]).task
        except (HydraException, OmegaConfBaseException) as error:
            raise ConfigError(f"--experiment {experiment}: {one_line(error)}") from error
        if task != "classification":
            raise ConfigError(
                f"--experiment {experiment} is a {task} preset: give a classification one (e.g. sms_bilstm_attn)"
            )
        for run in runs:
            try:
                for override in run.overrides:
                    if (moved := moved_key_error(override.split("=")[0])) is not None:
                        raise moved
                cfg = check_run_config(compose(config_name="config", overrides=list(run.overrides)))
            except (HydraException, OmegaConfBaseException, ValueError) as error:
                raise ConfigError(f"variant {run.variant}: {one_line(error)}") from error
            if not cfg.test_after_training:
                raise ConfigError("test_after_training=false: the table needs each run's test accuracy, leave it out")


def train(run: Run, threads: int) -> dict[str, Any]:
    """Run ``python -m nmt.train`` for ``run`` (unless its results exist); return its row."""
    results = run.directory / RESULTS_FILE
    if not results.is_file():
        if run.directory.exists():
            shutil.rmtree(run.directory)  # an interrupted run of ours: start it over
        run.directory.mkdir(parents=True)
        command = [sys.executable, "-m", "nmt.train", *run.overrides, f"hydra.run.dir={run.directory}"]
        environment = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        print(f"training {run.variant} seed {run.seed} -> {run.directory}", file=sys.stderr, flush=True)
        with (run.directory / "console.log").open("w", encoding="utf-8") as log:
            status = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=environment).returncode
        if status != 0 or not results.is_file():
            return {"variant": run.variant, "seed": run.seed, "run_dir": str(run.directory), "failed": status or 1}
    summary = json.loads(results.read_text(encoding="utf-8"))
    return {
        "variant": run.variant,
        "seed": run.seed,
        "run_dir": str(run.directory),
        "test_acc": summary["metrics"].get(METRIC),
        "steps": summary["global_step"],
        "train_cpu_s": summary["train_cpu_s"],
        "train_time_s": summary["train_time_s"],
        "stopped_by": summary["stopped_by"],
    }


def percent(value: float) -> str:
    return f"{100 * value:.2f}"


def table(rows: Sequence[dict[str, Any]], variants: Sequence[str]) -> str:
    """The Markdown table: one line per variant, in ``variants`` order."""
    lines = [
        "| variant | test accuracy (%) | each seed | steps | CPU min | stopped by |",
        "|---|---|---|---|---|---|",
    ]
    for name in variants:
        runs = sorted((r for r in rows if r["variant"] == name), key=lambda r: r["seed"])
        done = [r for r in runs if r.get("test_acc") is not None]
        seeds = ", ".join(
            f"{r['seed']}: {percent(r['test_acc'])}" if r.get("test_acc") is not None else f"{r['seed']}: failed"
            for r in runs
        )
        if not done:
            lines.append(f"| {VARIANTS[name].label} | failed | {seeds} | | | |")
            continue
        accuracies = [r["test_acc"] for r in done]
        mean = percent(statistics.fmean(accuracies))
        spread = f" ± {percent(statistics.stdev(accuracies))}" if len(accuracies) > 1 else ""
        steps = round(statistics.fmean(r["steps"] for r in done))
        cpu = statistics.fmean(r["train_cpu_s"] for r in done) / 60
        reasons = Counter(str(r["stopped_by"] or "?") for r in done)
        stopped = ", ".join(reason if n == 1 else f"{reason} x{n}" for reason, n in reasons.items())
        lines.append(f"| {VARIANTS[name].label} | {mean}{spread} | {seeds} | {steps} | {cpu:.1f} | {stopped} |")
    return "\n".join(lines) + "\n"


def compare(args: argparse.Namespace) -> int:
    check_overrides(args.overrides)
    runs = plan_runs(args)
    check_runs(args.experiment, runs)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(lambda run: train(run, args.threads), runs))
    text = table(rows, args.variants)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "table.md").write_text(text, encoding="utf-8")
    report = {
        "experiment": args.experiment,
        "seeds": args.seeds,
        "budget": budget_overrides(args.max_cpu_time, args.max_steps),
        "overrides": args.overrides,
        "variants": {name: list(VARIANTS[name].overrides) for name in args.variants},
        "runs": rows,
    }
    (args.output / "results.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(text, end="")
    failed = [f"{r['variant']} seed {r['seed']} ({r['run_dir']}/console.log)" for r in rows if "failed" in r]
    if failed:
        print(f"{PROG}: error: runs failed: {'; '.join(failed)}", file=sys.stderr)
        return EXIT_RUNTIME_ERROR
    return 0


def variant_list() -> str:
    return "\n".join(f"{name:<26} {v.label}: {' '.join(v.overrides)}" for name, v in VARIANTS.items())


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = OneLineArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiment", help="the classification preset the variants change, e.g. sms_bilstm_attn")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1234], help="one run per seed per variant (1234)")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--max-cpu-time", help="training.max_cpu_time of every run, DD:HH:MM:SS")
    budget.add_argument("--max-steps", type=positive_int, help="trainer.max_steps of every run")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch threads per run (1)")
    parser.add_argument("--jobs", type=positive_int, default=1, help="runs at once (1)")
    parser.add_argument("--output", type=Path, help="the comparison's directory (runs, table.md, results.json)")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), help="the rows to train (default: all)")
    parser.add_argument("--list", action="store_true", help="print the variants and their overrides, and exit")
    parser.add_argument(
        "overrides", nargs="*", help="Hydra overrides for every run, e.g. data.path=... model.embed_size=128"
    )
    args = parser.parse_intermixed_args(argv)
    if args.list:
        return args
    for name in ("experiment", "output"):
        if getattr(args, name) is None:
            parser.error(f"--{name} is required")
    if args.max_cpu_time is None and args.max_steps is None:
        parser.error("give the budget of every run: --max-cpu-time DD:HH:MM:SS or --max-steps N")
    if len(set(args.seeds)) != len(args.seeds):
        parser.error("--seeds repeats a seed")
    args.variants = list(dict.fromkeys(args.variants or VARIANTS))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_arguments(argv)
    if args.list:
        print(variant_list())
        return 0
    return run_command(PROG, lambda: compare(args))


if __name__ == "__main__":
    sys.exit(main())
