"""Classify texts with a trained checkpoint: ``python -m nmt.classify CHECKPOINT [options]``.

Reads one text per line (``--input FILE`` or stdin) and writes exactly one line per input
line: the label, its probability and the most-attended tokens. Lines are split on ``\\n``
only (a stray ``\\r``, U+2028 or form feed stays inside its line), undecodable bytes become
U+FFFD, a UTF-8 byte-order mark is dropped, and text is normalised as the training data
was. Input that is not UTF-8 text at all (UTF-16 or UTF-32, compressed, binary) is refused
before anything is written, with a message that says how to convert it. An empty line is classified as an
empty text (one padding token, as for the empty documents of NSMC) and lists no tokens.
An empty input writes nothing. Texts longer than the training budget are truncated the
same way (``data.max_tokens``, ``data.truncation``).

Output formats: ``tsv`` (default) ``label<TAB>probability<TAB>token:weight token:weight ...``
or ``jsonl`` (one JSON object per line). ``--html FILE`` also writes every text with each
token shaded by its attention weight.

Errors (a bad option or value, a missing or damaged checkpoint, input that is not UTF-8
text) are one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import BinaryIO, Iterator, TextIO

from nmt.cli.translate import OneLineArgumentParser
from nmt.data.input_check import checked_stream
from nmt.data.text import normalize_text
from nmt.evaluation.highlight import HighlightedText, display_token, render_page
from nmt.inference.checkpoint import CheckpointError
from nmt.inference.classifier import Classifier, Prediction, load_classifier


def read_lines(stream: BinaryIO) -> Iterator[str]:
    """Decoded, normalised lines of a byte stream, split on ``\\n`` only."""
    for raw in stream:
        yield normalize_text(raw.rstrip(b"\n").decode("utf-8", errors="replace"))


def _clean_token(token: str) -> str:
    """One-line, tab-free display of a token for the TSV output ("␣" for a space)."""
    shown = display_token(token).strip()
    return shown if shown else "\u2423"


def format_line(prediction: Prediction, top_k: int, fmt: str) -> str:
    top = prediction.top_tokens(top_k)
    if fmt == "jsonl":
        record = {
            "label": prediction.label,
            "probability": round(prediction.probability, 6),
            "top_tokens": [{"token": display_token(t), "weight": round(w, 6)} for t, w in top],
        }
        return json.dumps(record, ensure_ascii=False)
    tokens = " ".join(f"{_clean_token(t)}:{w:.3f}" for t, w in top)
    return f"{prediction.label}\t{prediction.probability:.4f}\t{tokens}"


def run(args: argparse.Namespace, stdin: BinaryIO, stdout: TextIO) -> int:
    import torch  # after parsing: --help and option errors stay fast

    torch.set_num_threads(args.threads)
    classifier = Classifier(load_classifier(args.checkpoint))
    rows: list[HighlightedText] = []
    source = open(args.input, "rb") if args.input else stdin
    try:
        # Typed text cannot be UTF-16, and reading ahead for the check would wait for it.
        checked = source if source.isatty() else checked_stream(source, args.input or "-")
        for _, prediction in classifier.predict_stream(read_lines(checked), args.batch_size):
            stdout.write(format_line(prediction, args.top_k, args.format) + "\n")
            if args.html:
                rows.append(HighlightedText(prediction.label, prediction.probability, prediction.tokens, prediction.weights))
    finally:
        if args.input:
            source.close()
    stdout.flush()
    if args.html:
        Path(args.html).write_text(render_page(rows, f"nmt.classify: {Path(args.checkpoint).name}"), encoding="utf-8")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parsed and checked arguments; a bad one exits with status 2 and one line on stderr."""
    parser = OneLineArgumentParser(prog="python -m nmt.classify", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="a classification checkpoint (.ckpt)")
    parser.add_argument("--input", help="text file, one text per line (default: stdin)")
    parser.add_argument("--format", choices=("tsv", "jsonl"), default="tsv")
    parser.add_argument("--top-k", type=int, default=5, help="most-attended tokens to list")
    parser.add_argument("--html", help="also write an HTML page with attention-shaded tokens")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    for option, value, least in (("--batch-size", args.batch_size, 1), ("--top-k", args.top_k, 0),
                                 ("--threads", args.threads, 1)):
        if value < least:
            parser.error(f"{option} must be >= {least}, got {value}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Line-buffered UTF-8 whatever the locale, so a pipe sees each result as it is ready.
    stdout = open(sys.stdout.fileno(), "w", encoding="utf-8", newline="\n", buffering=1, closefd=False)
    try:
        return run(args, sys.stdin.buffer, stdout)
    except (CheckpointError, ValueError, OSError) as error:
        print(f"nmt.classify: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
