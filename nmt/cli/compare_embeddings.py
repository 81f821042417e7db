"""Compare ``python -m nmt.embeddings`` runs: one Markdown table row per run directory.

    nmt-compare-embeddings outputs/embeddings/imdb-*/*/

Reads each run's ``report.json`` (written by ``python -m nmt.embeddings``) and prints the
method, corpus size, training time (wall and CPU), analogy accuracy and coverage (semantic,
syntactic) and the WordSim-353 Spearman correlation.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from nmt.cli.common import OneLineArgumentParser, run_command

PROG = "nmt-compare-embeddings"

HEADER = (
    "| method | corpus tokens | vocabulary | dim | train wall / CPU (s) | analogies: accuracy (answered) "
    "| semantic / syntactic | WordSim-353 Spearman (pairs) |\n|---|---|---|---|---|---|---|---|"
)


def describe(method: dict) -> str:
    if method["name"] == "word2vec":
        name = {"skipgram": "skip-gram", "cbow": "CBOW"}[method["architecture"]]
        return f"word2vec {name}, {'neg. sampling' if method['loss'] == 'negative' else 'hier. softmax'}"
    if method["name"] == "fasttext":
        return f"fastText {method['architecture']}, n-grams {method['min_n']}-{method['max_n']}"
    return f"GloVe, window {method['window']}"


def percent(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def row(report: dict) -> str:
    method = report["method"]
    analogies, wordsim = report["evaluation"]["analogies"], report["evaluation"]["wordsim353"]
    spearman = "n/a" if wordsim["spearman"] is None else f"{wordsim['spearman']:.3f}"
    return (
        f"| {describe(method)}, {method['epochs']} epochs | {report['tokens']:,} | {report['vocabulary']:,} "
        f"| {report['dim']} | {report['train_seconds']:.0f} / {report['train_cpu_seconds']:.0f} "
        f"| {percent(analogies['accuracy'])} ({analogies['answered']:,} of {analogies['questions']:,}) "
        f"| {percent(analogies['semantic'])} / {percent(analogies['syntactic'])} | {spearman} ({wordsim['pairs']}) |"
    )


def read_row(run: Path) -> str:
    """The table row of one run directory (or its report.json)."""
    path = run if run.suffix == ".json" else run / "report.json"
    try:
        return row(json.loads(path.read_text(encoding="utf-8")))
    except KeyError as error:
        raise ValueError(f"{path}: no {error} in the report (not written by python -m nmt.embeddings?)") from error
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error


def print_table(runs: list[Path]) -> None:
    rows = [read_row(run) for run in runs]
    print(HEADER)
    print("\n".join(rows))


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories (or their report.json)")
    args = parser.parse_args(argv)
    return run_command(PROG, lambda: print_table(args.runs))


if __name__ == "__main__":
    sys.exit(main())
