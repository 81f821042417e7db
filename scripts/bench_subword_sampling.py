"""Measure subword sampling's cost: time per sentence, share of changed segmentations, length.

    python scripts/bench_subword_sampling.py [--side source|target] [--vocab-size 8000]

On the embedded Tatoeba sample (30,000 pairs, one side), with a unigram SentencePiece model
trained on it, each (n-best, alpha) setting draws one segmentation per sentence as the
training loader does (:meth:`SentencePieceTokenizer.sample_encode`), against the best
segmentation encoded in one batch call and one sentence at a time. One process, one thread.
"""

from __future__ import annotations

import argparse
import json
import time

from nmt.data.corpora import read_translation_pairs
from nmt.data.embedded import embedded_path
from nmt.data.subword_sampling import sampling_seed
from nmt.data.tokenizers import SentencePieceTokenizer


def microseconds_per_text(seconds: float, texts: list[str]) -> float:
    return round(seconds / len(texts) * 1e6, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", choices=("source", "target"), default="source")
    parser.add_argument("--vocab-size", type=int, default=8000)
    args = parser.parse_args()
    pairs, _ = read_translation_pairs(embedded_path("fra"))
    texts = [pair[0 if args.side == "source" else 1] for pair in pairs]
    tokenizer = SentencePieceTokenizer.train(texts, vocab_size=args.vocab_size, num_threads=1)
    start = time.perf_counter()
    best = tokenizer.encode_batch(texts)
    results = {"texts": len(texts), "vocab_size": tokenizer.vocab_size}
    results["best_batch_us"] = microseconds_per_text(time.perf_counter() - start, texts)
    start = time.perf_counter()
    for text in texts:
        tokenizer.encode(text)
    results["best_single_us"] = microseconds_per_text(time.perf_counter() - start, texts)
    print(json.dumps(results))
    for nbest in (4, 16, 64):
        for alpha in (0.1, 0.5):
            start = time.perf_counter()
            sampled = [
                tokenizer.sample_encode(text, alpha=alpha, nbest=nbest, seed=sampling_seed(0, 0, i, 0))
                for i, text in enumerate(texts)
            ]
            row = {
                "nbest": nbest,
                "alpha": alpha,
                "us": microseconds_per_text(time.perf_counter() - start, texts),
                "changed": round(sum(a != b for a, b in zip(sampled, best)) / len(texts), 3),
                "length_ratio": round(sum(map(len, sampled)) / sum(map(len, best)), 3),
            }
            print(json.dumps(row))


if __name__ == "__main__":
    main()
