"""Measure tokenizer speed: training, encoding (one text at a time and batched), decoding.

    python scripts/bench_tokenizers.py [--data fra.txt.xz] [--lines 40000] [--vocab-size 8000]
        [--repeats 3] [--side source|target]

Without ``--data`` the texts are a synthetic French-like corpus made here (offline, seeded);
with it, the first ``--lines`` pairs of a Tatoeba file (one side). Each figure is the best of
``--repeats`` runs, in texts and characters per second; one JSON line at the end holds them
all. Wall-clock speed depends on the machine and on what else runs on it: compare figures
taken side by side, not across machines.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

from nmt.data.tokenizers import CharTokenizer, SentencePieceTokenizer, Tokenizer

WORDS = (
    "le la les un une des chat chien maison rouge bleu très grand petit été café naïve mange "
    "court dort voit aime pas ne je tu il elle nous vous ils est sont était « » ’ , . ! ? —"
).split()


def synthetic_texts(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 14))) for _ in range(count)]


def corpus_texts(path: Path, count: int, side: str) -> list[str]:
    from nmt.data.corpora import read_translation_pairs

    pairs, _ = read_translation_pairs(path)
    column = 0 if side == "source" else 1
    return [pair[column] for pair in pairs[:count]]


def best_seconds(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(name: str, tokenizer: Tokenizer, texts: list[str], repeats: int) -> list[dict]:
    characters = sum(map(len, texts))
    ids = tokenizer.encode_batch(texts)
    cases = {
        "encode (one text at a time)": lambda: [tokenizer.encode(text) for text in texts],
        "encode_batch": lambda: tokenizer.encode_batch(texts),
        "decode_batch": lambda: tokenizer.decode_batch(ids),
    }
    rows = []
    for operation, run in cases.items():
        seconds = best_seconds(run, repeats)
        rows.append(
            {
                "tokenizer": name,
                "operation": operation,
                "texts": len(texts),
                "seconds": round(seconds, 4),
                "texts_per_second": round(len(texts) / seconds),
                "chars_per_second": round(characters / seconds),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="a Tatoeba file (fra.txt[.xz]); default: synthetic texts")
    parser.add_argument("--side", choices=("source", "target"), default="source")
    parser.add_argument("--lines", type=int, default=40_000, help="texts to tokenize (default 40,000)")
    parser.add_argument("--vocab-size", type=int, default=8000, help="SentencePiece vocabulary (default 8000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure; the best counts (default 3)")
    args = parser.parse_args(argv)
    if args.lines < 1 or args.repeats < 1:
        parser.error("--lines and --repeats must be >= 1")

    texts = corpus_texts(args.data, args.lines, args.side) if args.data else synthetic_texts(args.lines)
    rows, training = [], {}
    start = time.perf_counter()
    char = CharTokenizer.train(texts)
    training["char"] = round(time.perf_counter() - start, 3)
    start = time.perf_counter()
    spm = SentencePieceTokenizer.train(texts, vocab_size=args.vocab_size)
    training["sentencepiece"] = round(time.perf_counter() - start, 3)
    rows += measure("char", char, texts, args.repeats)
    rows += measure(f"sentencepiece ({spm.vocab_size} pieces)", spm, texts, args.repeats)

    print(
        f"{len(texts):,} texts, {sum(map(len, texts)):,} characters "
        f"({args.data or 'synthetic'}); training: char {training['char']} s, "
        f"sentencepiece {training['sentencepiece']} s"
    )
    print(f"{'tokenizer':<30} {'operation':<28} {'texts/s':>12} {'chars/s':>14}")
    for row in rows:
        print(
            f"{row['tokenizer']:<30} {row['operation']:<28} {row['texts_per_second']:>12,} "
            f"{row['chars_per_second']:>14,}"
        )
    report = {
        "data": str(args.data or "synthetic"),
        "texts": len(texts),
        "training_seconds": training,
        "results": rows,
        "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine()},
    }
    print(json.dumps(report, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
