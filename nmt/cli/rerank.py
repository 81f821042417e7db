"""Rerank n-best lists by a weighted sum of features, with weights given or tuned for BLEU.

    python -m nmt.rerank SOURCE NBEST (--weights tm=1,lm=0.3 | --weights FILE.json | --tune REFS)
        [--lm CHECKPOINT] [--reverse CHECKPOINT [--reverse-to LANG]] [--tune-features NAMES] [--save-weights FILE]
        [--output FILE] [--features-output FILE] [--features-input FILE] [--batch-size B] [--device auto|cpu|cuda] [--threads N]

``NBEST`` is the output of ``nmt-translate --output-format jsonl --n-best N`` for the lines
of ``SOURCE`` (one JSON object per source line). The features of each hypothesis are
:data:`nmt.inference.reranking.FEATURES`: ``tm`` (the decoder's score), ``tm_logprob``,
``tm_avg``, ``tokens``, ``words``, ``lm`` (needs ``--lm``, a ``task=lm`` checkpoint of the
target language, which scores the translation with its own tokenizer) and ``rev`` (needs
``--reverse``, a translation model of the opposite direction: log p(source | translation);
a reverse model trained on several directions needs ``--reverse-to``, the language of SOURCE).

``--weights`` gives the weights as ``NAME=NUMBER`` pairs, or a JSON file written by
``--save-weights``; a feature not named weighs 0. ``--tune REFS`` finds them instead, on
these sentences, by coordinate ascent for corpus BLEU (sacreBLEU) over the features of
``--tune-features`` (default: every feature the given models allow); ``REFS`` is parallel to
``SOURCE``, a line holding one reference or several separated by TABs. The chosen weights,
their BLEU, the BLEU of the start (``tm=1``: the decoder's 1-best) and an oracle's are printed as JSON on stderr and written to
``--save-weights``, to be applied to another set with ``--weights FILE``.

Output: **exactly one line per source line**: the chosen translation (an empty line for a
source without hypotheses). ``--features-output`` writes one JSON line per source line with
every hypothesis's features and the index chosen; ``--features-input`` reads such a file of
the same n-best lists back instead of computing the features again (the models are then not
needed), to tune or apply several sets of weights at the cost of one language-model pass.

Errors are one line on stderr. A bad option or value, an unknown feature name, a malformed
n-best line, files that do not match, a missing or wrong-task checkpoint, or a feature whose
model is not given exit with status 2; a failure of the run itself with 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from nmt.cli.common import (
    OneLineArgumentParser,
    add_device_argument,
    add_threads_argument,
    apply_threads,
    output_stream,
    positive_int,
    read_lines,
    resolve_device,
    run_command,
    utf8_stdout,
)

PROG = "python -m nmt.rerank"
FEATURE_NAMES = ("tm", "tm_logprob", "tm_avg", "tokens", "words", "lm", "rev")
"""The names of :data:`nmt.inference.reranking.FEATURES`, here without torch for a fast ``--help``."""


def build_parser() -> OneLineArgumentParser:
    parser = OneLineArgumentParser(
        prog=PROG,
        description="Rerank nmt-translate n-best lists (JSON lines) by a weighted sum of features.",
        epilog=f"Features: {', '.join(FEATURE_NAMES)}.",
    )
    parser.add_argument("source", type=Path, help="the source lines the n-best lists translate")
    parser.add_argument("nbest", type=Path, help="nmt-translate --output-format jsonl --n-best N output for SOURCE")
    choose = parser.add_argument_group("weights")
    choose.add_argument("--weights", metavar="W", help="NAME=NUMBER,... (e.g. tm=1,lm=0.3) or a --save-weights file")
    choose.add_argument("--tune", type=Path, metavar="REFS", help="tune the weights for BLEU against these references")
    choose.add_argument("--tune-features", metavar="NAMES", help="comma-separated features to tune (default: all)")
    choose.add_argument("--save-weights", type=Path, metavar="FILE", help="write the tuned weights as JSON")
    models = parser.add_argument_group("models")
    models.add_argument("--lm", type=Path, metavar="CHECKPOINT", help="a target-language task=lm checkpoint (lm)")
    models.add_argument("--reverse", type=Path, metavar="CHECKPOINT", help="a target-to-source translation model (rev)")
    models.add_argument(
        "--reverse-to",
        metavar="LANG",
        help="the language of SOURCE, when --reverse was trained on several directions (e.g. en)",
    )
    out = parser.add_argument_group("output")
    out.add_argument(
        "--output", type=Path, metavar="FILE", help="write the chosen translations to FILE (default stdout)"
    )
    out.add_argument("--features-output", type=Path, metavar="FILE", help="write every hypothesis's features (JSONL)")
    out.add_argument(
        "--features-input",
        type=Path,
        metavar="FILE",
        help="read the features from a --features-output file of the same n-best lists instead of computing them",
    )
    run = parser.add_argument_group("running")
    run.add_argument("--batch-size", type=positive_int, default=64, metavar="B", help="texts per batch (default 64)")
    add_device_argument(run)
    add_threads_argument(run)
    return parser


def check_options(parser: OneLineArgumentParser, args: argparse.Namespace) -> None:
    if (args.weights is None) == (args.tune is None):
        parser.error("give either --weights (to apply) or --tune REFS (to find them)")
    if args.tune is None and (args.tune_features or args.save_weights):
        parser.error("--tune-features and --save-weights go with --tune")


def chosen_weights(args: argparse.Namespace) -> dict[str, float]:
    """The weights of ``--weights``: pairs, or a JSON file when the value has no ``=``."""
    from nmt.evaluation.reranking import load_weights, parse_weights

    if "=" in args.weights:
        return parse_weights(args.weights, FEATURE_NAMES)
    if not Path(args.weights).is_file():
        raise ValueError(f"--weights {args.weights}: neither NAME=NUMBER pairs (e.g. tm=1,lm=0.3) nor a weights file")
    return load_weights(args.weights, FEATURE_NAMES)


def tuned_feature_names(args: argparse.Namespace) -> list[str]:
    from nmt.evaluation.reranking import check_names

    if args.tune_features:
        names = [name.strip() for name in args.tune_features.split(",") if name.strip()]
        check_names(names, FEATURE_NAMES)
        return names
    models = {"lm": args.lm, "rev": args.reverse}
    return [name for name in FEATURE_NAMES if name not in models or models[name] is not None]


def read_references(path: Path, count: int) -> list[list[str]]:
    with open(path, "rb") as stream:
        lines = read_lines(stream, str(path))
    if len(lines) != count:
        raise ValueError(f"{path} has {len(lines)} lines but the source has {count}: give one line of references each")
    return [[ref for ref in line.split("\t") if ref.strip()] for line in lines]


def log(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def load_scorers(args: argparse.Namespace, names: list[str]):
    """The language model and reverse translation model that ``names`` need (else None)."""
    device = resolve_device(args.device)
    lm = reverse = None
    if "lm" in names:
        from nmt.inference.lm_scorer import TextScorer

        lm = TextScorer.from_checkpoint(args.lm, device)
    if "rev" in names:
        from nmt.inference.scorer import Scorer
        from nmt.inference.translator import Translator

        reverse = Scorer(Translator.from_checkpoint(args.reverse, device=device))
    return lm, reverse


def tune(args: argparse.Namespace, table, references: list[list[str]]) -> dict[str, float]:
    """Tune on ``table``; print the report as one JSON line on stderr, save it if asked."""
    from nmt.cli.records import json_line
    from nmt.evaluation.reranking import save_weights, tune_weights

    started = time.perf_counter()
    result = tune_weights(table, references, table.names)
    report = {
        "weights": result.weights,
        "bleu": round(result.bleu, 2),
        "start_bleu": round(result.start_bleu, 2),
        "oracle_bleu": round(result.oracle_bleu, 2),
        "sentences": len(references),
        "trials": result.trials,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json_line(report), file=sys.stderr, flush=True)
    if args.save_weights is not None:
        details = {key: value for key, value in report.items() if key != "weights"}
        save_weights(args.save_weights, result.weights, references=str(args.tune), **details)
    return result.weights


def run(args: argparse.Namespace) -> None:
    apply_threads(args.threads)
    from nmt.cli.records import json_line
    from nmt.inference.reranking import (
        check_sources,
        feature_records,
        feature_table,
        needed_models,
        parse_nbest,
        table_from_records,
    )

    weights = chosen_weights(args) if args.weights is not None else None
    names = list(weights) if weights is not None else tuned_feature_names(args)
    if args.features_input is None:
        needed_models(names, {"lm": args.lm, "rev": args.reverse})
    with open(args.source, "rb") as stream:
        sources = read_lines(stream, str(args.source))
    with open(args.nbest, "rb") as stream:
        entries = parse_nbest(read_lines(stream, str(args.nbest)), str(args.nbest))
    check_sources(entries, sources, str(args.source))
    references = read_references(args.tune, len(sources)) if args.tune is not None else None
    if args.features_input is not None:
        with open(args.features_input, "rb") as stream:
            table = table_from_records(
                read_lines(stream, str(args.features_input)), entries, names, str(args.features_input)
            )
    else:
        lm, reverse = load_scorers(args, names)
        started = time.perf_counter()
        table = feature_table(
            entries, sources, names, lm=lm, reverse=reverse, reverse_to=args.reverse_to, batch_size=args.batch_size
        )
        log(f"{', '.join(names)} of {int(table.mask.sum())} hypotheses in {time.perf_counter() - started:.1f} s")
    if references is not None:
        weights = tune(args, table, references)
    assert weights is not None
    choice = table.best(weights).tolist()
    with output_stream(args.output) as out:
        out.writelines(text + "\n" for text in table.choose(weights))
        out.flush()
    if args.features_output is not None:
        with open(args.features_output, "w", encoding="utf-8", newline="\n") as stream:
            stream.writelines(json_line(record) + "\n" for record in feature_records(entries, table, choice))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_options(parser, args)
    utf8_stdout()
    return run_command(PROG, lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
