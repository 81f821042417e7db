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
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import BinaryIO, Iterator, TextIO

import torch

from nmt.checkpoint import (
    PAYLOAD_KEY,
    CheckpointError,
    checkpoint_config,
    checkpoint_tokenizers,
    load_checkpoint,
    model_state_dict,
)
from nmt.data.classification_batching import collate_labelled, truncate
from nmt.data.input_check import checked_stream
from nmt.data.text import normalize_text
from nmt.data.tokenizers import Tokenizer
from nmt.evaluation.highlight import HighlightedText, display_token, render_page
from nmt.modules.classifier import TextClassifier, class_probabilities
from nmt.translate import OneLineArgumentParser


@dataclass
class LoadedClassifier:
    """What the tools need from a classification checkpoint."""

    model: TextClassifier
    tokenizer: Tokenizer
    labels: list[str]
    config: dict


def load_classifier(path: str | Path, map_location: str | torch.device = "cpu") -> LoadedClassifier:
    """Rebuild the network (in eval mode) from a classification checkpoint alone; the
    translation checkpoint it may have been initialised from is not needed. No Lightning."""
    checkpoint = load_checkpoint(path, map_location)
    payload = checkpoint[PAYLOAD_KEY]
    if payload["task"] != "classification":
        raise CheckpointError(f"{path} is a {payload['task']!r} checkpoint, not a classification one")
    config = checkpoint_config(checkpoint)
    tokenizer = checkpoint_tokenizers(checkpoint)["source"]
    labels = list(payload.get("labels") or config["data"]["labels"])
    model = TextClassifier.from_config(config["model"], tokenizer.vocab_size, len(labels))
    model.load_state_dict(model_state_dict(checkpoint))
    return LoadedClassifier(model.eval(), tokenizer, labels, config)


@dataclass
class Prediction:
    """:ivar tokens: the attended tokens (after truncation) and :ivar weights: their weights.
    :ivar probabilities: of every label, in the checkpoint's label order.
    :ivar truncated: the text was longer than ``data.max_tokens`` and was cut."""

    label: str
    probability: float
    tokens: list[str]
    weights: list[float]
    probabilities: list[float] = field(default_factory=list)
    truncated: bool = False

    def top_tokens(self, k: int) -> list[tuple[str, float]]:
        order = sorted(range(len(self.tokens)), key=lambda i: (-self.weights[i], i))[:k]
        return [(self.tokens[i], self.weights[i]) for i in order]


def read_lines(stream: BinaryIO) -> Iterator[str]:
    """Decoded, normalised lines of a byte stream, split on ``\\n`` only."""
    for raw in stream:
        yield normalize_text(raw.rstrip(b"\n").decode("utf-8", errors="replace"))


class Classifier:
    """A loaded checkpoint plus the text -> tokens -> prediction steps around it."""

    def __init__(self, loaded: LoadedClassifier) -> None:
        self.loaded = loaded
        data = loaded.config["data"]
        self.max_tokens = data.get("max_tokens")
        self.truncation = data.get("truncation", "head")
        self.head_tokens = data.get("head_tokens")

    def _cut(self, items: list) -> list:
        return truncate(items, self.max_tokens, self.truncation, self.head_tokens)

    def _pieces(self, text: str, ids: list[int]) -> list[str]:
        """Surface tokens aligned with ``ids`` (vocabulary entries if the two ever differ)."""
        pieces = self._cut(self.loaded.tokenizer.pieces(text))
        return pieces if len(pieces) == len(ids) else self.loaded.tokenizer.id_to_piece(ids)

    @torch.inference_mode()
    def predict(self, texts: list[str]) -> list[Prediction]:
        tokenizer, model = self.loaded.tokenizer, self.loaded.model
        full = [tokenizer.encode(text) for text in texts]
        ids = [self._cut(seq) for seq in full]
        pieces = [self._pieces(text, seq) for text, seq in zip(texts, ids)]
        batch = collate_labelled([(seq, 0) for seq in ids])
        output = model(batch.src, batch.src_lengths)
        probabilities = class_probabilities(output.logits)
        predictions = []
        for row, seq in enumerate(ids):
            best = int(probabilities[row].argmax())
            weights = output.attention[row, : len(seq)].tolist() if seq and output.attention is not None else []
            predictions.append(
                Prediction(self.loaded.labels[best], float(probabilities[row, best]), pieces[row], weights,
                           probabilities[row].tolist(), len(seq) < len(full[row]))
            )
        return predictions

    def predict_stream(self, lines: Iterator[str], batch_size: int) -> Iterator[tuple[str, Prediction]]:
        """Predictions in input order, ``batch_size`` texts at a time (the encoder packs the
        batch, so padding costs no recurrent steps)."""
        while chunk := list(islice(lines, batch_size)):
            yield from zip(chunk, self.predict(chunk))


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
