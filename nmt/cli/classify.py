"""Classify texts with a trained checkpoint: ``python -m nmt.classify CHECKPOINT [options]``.

Reads one text per line (``--input FILE`` or stdin) and writes exactly one line per input
line: the label, its probability and the most-attended tokens. Lines are split on ``\\n``
only (the ``\\r`` of a CRLF ending is dropped; U+2028 or a form feed stays inside its line; see
:func:`nmt.cli.common.iter_lines`), undecodable bytes become
U+FFFD, a UTF-8 byte-order mark is dropped, and text is normalised as the training data
was. Input that is not UTF-8 text at all (UTF-16 or UTF-32, compressed, binary) is refused
before anything is written, with a message that says how to convert it. An empty line is classified as an
empty text (one padding token, as for the empty documents of NSMC) and lists no tokens.
An empty input writes nothing. Texts longer than the training budget are truncated the
same way (``data.max_tokens``, ``data.truncation``).

Output formats: ``tsv`` (default) ``label<TAB>probability<TAB>token:weight token:weight ...``
or ``jsonl`` (one JSON object per line). ``--html FILE`` also writes every text with each
token shaded by its attention weight.

A baseline checkpoint (``task=baseline``: Naive Bayes, NB-SVM, mean word vectors) classifies
the same way; its tokens are the text's n-grams (or words) and their weights the contribution
of each to the predicted label's margin (:class:`~nmt.inference.classifier.BaselineClassifier`),
the largest first. It runs on the CPU and reads whole texts.

``--device`` runs the network on a GPU (default auto: one when there is one).

Errors are one line on stderr. A bad option or value, a missing, damaged or
non-classification checkpoint, input that is not UTF-8 text or CUDA asked for but absent
exit with status 2; a failure of the run itself with 1 (see :mod:`nmt.cli.common`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import BinaryIO, TextIO

from nmt.cli.common import (
    OneLineArgumentParser,
    add_running_arguments,
    apply_threads,
    iter_lines,
    positive_int,
    resolve_device,
    run_command,
)

PROG = "python -m nmt.classify"


def _clean_token(token: str) -> str:
    """One-line, tab-free display of a token for the TSV output ("␣" for a space)."""
    from nmt.evaluation.highlight import display_token

    shown = display_token(token).strip()
    return shown if shown else "\u2423"


def format_line(prediction, top_k: int, fmt: str) -> str:
    """The output line of one :class:`~nmt.inference.classifier.Prediction`."""
    from nmt.evaluation.highlight import display_token

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
    apply_threads(args.threads)
    device = resolve_device(args.device)  # a missing GPU fails before the checkpoint is read
    from nmt.data.text import normalize_text
    from nmt.evaluation.highlight import ATTENTION_SHADING, CONTRIBUTION_SHADING, HighlightedText, render_page
    from nmt.inference.classifier import BaselineClassifier, load_any_classifier

    classifier = load_any_classifier(args.checkpoint, device)
    baseline = isinstance(classifier, BaselineClassifier)
    rows: list[HighlightedText] = []
    source = open(args.input, "rb") if args.input else stdin
    try:
        texts = (normalize_text(line) for line in iter_lines(source, args.input or "-"))
        for _, prediction in classifier.predict_stream(texts, args.batch_size):
            stdout.write(format_line(prediction, args.top_k, args.format) + "\n")
            if args.html:
                rows.append(
                    HighlightedText(prediction.label, prediction.probability, prediction.tokens, prediction.weights)
                )
    finally:
        if args.input:
            source.close()
    stdout.flush()
    if args.html:
        shading = CONTRIBUTION_SHADING if baseline else ATTENTION_SHADING
        page = render_page(rows, f"nmt.classify: {Path(args.checkpoint).name}", shading)
        Path(args.html).write_text(page, encoding="utf-8")
    return 0


def line_buffered_stdout() -> TextIO:
    """UTF-8 standard output whatever the locale, flushed at each line so that a pipe sees each
    result as it is ready (``sys.stdout`` itself where it is no file, e.g. captured)."""
    try:
        descriptor = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        return sys.stdout
    return open(descriptor, "w", encoding="utf-8", newline="\n", buffering=1, closefd=False)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parsed and checked arguments; a bad one exits with status 2 and one line on stderr."""
    parser = OneLineArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="a classification or baseline checkpoint (.ckpt)")
    parser.add_argument("--input", help="text file, one text per line (default: stdin)")
    parser.add_argument("--format", choices=("tsv", "jsonl"), default="tsv")
    parser.add_argument(
        "--top-k", type=int, default=5, help="most-attended tokens (a baseline's: largest contributions)"
    )
    parser.add_argument("--html", help="also write an HTML page with attention-shaded tokens")
    parser.add_argument("--batch-size", type=positive_int, default=64)
    add_running_arguments(parser, precision=False)
    args = parser.parse_args(argv)
    if args.top_k < 0:
        parser.error(f"--top-k must be >= 0, got {args.top_k}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_command(PROG, lambda: run(args, sys.stdin.buffer, line_buffered_stdout()))


if __name__ == "__main__":
    sys.exit(main())
