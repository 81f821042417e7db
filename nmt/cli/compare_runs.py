"""Overlay the learning curves of several training runs in one PNG.

    nmt-compare-runs outputs/spm_bahdanau/RUN_A outputs/spm_bahdanau/RUN_B --output compare.png

Each RUN is a run directory (or its ``curves.jsonl``), written by every ``python -m nmt.train``.
The figure has train loss and the dev metric (BLEU for translation, accuracy for
classification, perplexity for language models; ``--metric val/loss`` to choose) against
wall-clock minutes and against steps. Labels are the run directories' names unless
``--labels`` gives others. A table of each run's best dev metric, and when it was reached,
is printed too.
"""

from __future__ import annotations

import sys
from pathlib import Path

from nmt.cli.common import OneLineArgumentParser, run_command

PROG = "nmt-compare-runs"


def curves_file(run: Path) -> Path:
    from nmt.training.curves import CURVES_FILE  # imports torch: not before --help

    path = run / CURVES_FILE if run.is_dir() else run
    if not path.is_file():
        raise FileNotFoundError(f"{run} has no {CURVES_FILE}: give a run directory written by python -m nmt.train")
    return path


def summary_lines(runs: dict[str, list[dict]], metric: str) -> list[str]:
    """One line per run: its best dev metric, at which step and minute, and its last one."""
    higher_is_better = metric in ("val/bleu", "val/acc", "val/f1")
    lines = [f"{'run':<30} {'best ' + metric:>14} {'step':>7} {'minute':>7} {'last':>8}"]
    for label, points in runs.items():
        dev = [p for p in points if p.get("kind") == "val" and metric in p]
        if not dev:
            lines.append(f"{label:<30} {'-':>14}")
            continue
        best = (max if higher_is_better else min)(dev, key=lambda p: p[metric])
        lines.append(
            f"{label:<30} {best[metric]:>14.2f} {best['step']:>7} {best['time_s'] / 60:>7.1f} {dev[-1][metric]:>8.2f}"
        )
    return lines


def compare(paths: list[Path], labels: list[str] | None, metric: str | None, output: Path) -> None:
    """Plot the runs' curves into ``output`` and print each run's best and last dev metric."""
    from nmt.training.curves import dev_metric, plot_curves, read_curves

    files = [curves_file(run) for run in paths]
    labels = labels or [f.parent.name for f in files]
    if len(set(labels)) != len(labels):
        labels = [str(f.parent) for f in files]
    runs = {label: read_curves(path) for label, path in zip(labels, files)}
    empty = [label for label, points in runs.items() if not points]
    if empty:
        raise ValueError(f"no points recorded yet in {', '.join(empty)}")
    metric = metric or next((m for m in map(dev_metric, runs.values()) if m), None)
    plot_curves(runs, output, metric)
    if metric:
        print("\n".join(summary_lines(runs, metric)))
    print(f"wrote {output}")


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories (or their curves.jsonl)")
    parser.add_argument("--output", type=Path, default=Path("compare.png"), help="the PNG to write (compare.png)")
    parser.add_argument("--labels", nargs="+", help="one label per run (default: the directory names)")
    parser.add_argument("--metric", help="the dev metric to draw, e.g. val/bleu, val/loss (default: the runs' own)")
    args = parser.parse_args(argv)
    if args.labels and len(args.labels) != len(args.runs):
        parser.error(f"--labels gives {len(args.labels)} labels for {len(args.runs)} runs")
    return run_command(PROG, lambda: compare(args.runs, args.labels, args.metric, args.output))


if __name__ == "__main__":
    sys.exit(main())
