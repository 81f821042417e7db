"""Score given translations with a trained checkpoint (forced decoding).

    python -m nmt.score CHECKPOINT [CHECKPOINT ...] [--input PAIRS.tsv | --src FILE --tgt FILE]
        [--output FILE] [--alignment] [--to LANG | --direction SRC-TGT] [--batch-size B] [--device auto|cpu|cuda] [--threads N] [--precision P]

Input: ``source<TAB>target`` lines from ``--input`` or stdin, or two line-parallel files
``--src`` and ``--tgt`` (read like the translate command's input: UTF-8, ``\\n``-separated).
A TSV line needs exactly one TAB; an empty line is an empty pair.

Output: **one JSON line per input line, in input order** (see :mod:`nmt.cli.records`)::

    {"source": ..., "target": ..., "source_tokens": [...], "truncated": false,
     "log_prob": -4.2, "tokens": ["▁le", "▁chat", "<eos>"], "token_log_probs": [-1.5, -2.1, -0.6]}

``log_prob`` is log p(target + EOS | source), the sum of ``token_log_probs`` -- the score
greedy search and sampling report for their own outputs, without any length penalty.
``--alignment`` adds ``alignment`` and ``pharaoh`` from the attention. An empty source
gives ``log_prob: null``; a side longer than the model's limit is truncated, with a warning.

A model trained on several directions (``data.directions``) scores in its first one unless
``--to fr`` or ``--direction en-fr`` says otherwise; the source is tagged as in training.

Several checkpoints score as one ensemble, as ``nmt-translate A B`` decodes: at every
position the mean of the members' probabilities, so that the score of an ensemble's own
output is the one its search reported (the alignment reads the members' mean attention).
They must share both tokenizers.

Errors are one line on stderr. A bad option or value, a malformed line, files of unequal
length, a missing, damaged or non-translation checkpoint, ensemble members with different
tokenizers, or a model without attention asked for ``--alignment`` exit with status 2; a failure of the run itself with 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nmt.cli.common import (
    OneLineArgumentParser,
    add_running_arguments,
    apply_threads,
    output_stream,
    positive_int,
    read_lines,
    resolve_device,
    run_command,
    utf8_stdout,
)
from nmt.cli.translate import add_checkpoints_argument, add_direction_arguments

PROG = "python -m nmt.score"


def build_parser() -> OneLineArgumentParser:
    parser = OneLineArgumentParser(
        prog=PROG,
        description="Score source/target pairs with a trained nmt translation checkpoint (forced decoding).",
        epilog="Each output line is a JSON object: log_prob, tokens, token_log_probs (and the alignment).",
    )
    add_checkpoints_argument(parser)
    parser.add_argument("--input", type=Path, metavar="FILE", help="source<TAB>target lines (default: stdin)")
    parser.add_argument("--src", type=Path, metavar="FILE", help="source lines, with --tgt (instead of --input)")
    parser.add_argument("--tgt", type=Path, metavar="FILE", help="target lines, line-parallel to --src")
    parser.add_argument("--output", type=Path, metavar="FILE", help="write the JSON lines to FILE instead of stdout")
    parser.add_argument(
        "--alignment", action="store_true", help="add each target token's most attended source token (and Pharaoh)"
    )
    add_direction_arguments(parser)
    run = parser.add_argument_group("running")
    run.add_argument("--batch-size", type=positive_int, default=64, metavar="B", help="pairs per batch (default 64)")
    add_running_arguments(run)
    return parser


def parse_pair(line: str, number: int) -> tuple[str, str]:
    """``source<TAB>target`` -> the pair; an empty line is an empty pair.

    :raises ValueError: a non-empty line without exactly one TAB, naming the line.
    """
    if not line.strip():
        return "", ""
    fields = line.split("\t")
    if len(fields) != 2:
        raise ValueError(f"line {number}: expected source<TAB>target, found {len(fields) - 1} TABs")
    return fields[0], fields[1]


def _read_file(path: Path) -> list[str]:
    with open(path, "rb") as stream:
        return read_lines(stream, str(path))


def read_pairs(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The pairs named by ``--input`` / ``--src`` + ``--tgt`` / stdin (ValueError if malformed)."""
    if args.src is not None:
        sources, targets = _read_file(args.src), _read_file(args.tgt)
        if len(sources) != len(targets):
            raise ValueError(f"--src has {len(sources)} lines but --tgt has {len(targets)}: they must be line-parallel")
        return list(zip(sources, targets))
    lines = _read_file(args.input) if args.input is not None else read_lines(sys.stdin.buffer)
    return [parse_pair(line, number) for number, line in enumerate(lines, start=1)]


def check_inputs(parser: OneLineArgumentParser, args: argparse.Namespace) -> None:
    """``--src`` and ``--tgt`` come together, and not with ``--input``."""
    if (args.src is None) != (args.tgt is None):
        parser.error("--src and --tgt go together")
    if args.src is not None and args.input is not None:
        parser.error("use either --input (TSV) or --src and --tgt, not both")


def run(args: argparse.Namespace) -> None:
    apply_threads(args.threads)
    from nmt.cli.records import json_line, score_record
    from nmt.inference.scorer import Scorer
    from nmt.inference.translator import Translator, decoding_dtype

    device = resolve_device(args.device)  # fail on a missing GPU before loading anything
    decoding_dtype(args.precision, device)
    pairs = read_pairs(args)
    translator = Translator.from_checkpoints(args.checkpoints, device=device, precision=args.precision)
    translator.direction(args.direction, args.to)  # a direction the model lacks fails before scoring
    scored = Scorer(translator).score(
        pairs, args.batch_size, return_attention=args.alignment, direction=args.direction, to=args.to
    )
    with output_stream(args.output) as out:
        out.writelines(json_line(score_record(pair, args.alignment)) + "\n" for pair in scored)
        out.flush()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_inputs(parser, args)
    utf8_stdout()
    return run_command(PROG, lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
