"""Decoding speed: sentences per second for greedy and beam search at several batch sizes.

    python scripts/bench_decode.py CHECKPOINT [CHECKPOINT ...] --input FILE [--limit 2000]
        [--strategies greedy beam5] [--batch-sizes 1 16 64] [--devices cpu cuda] [--threads N]
        [--precisions fp32 bf16 int8]
    python scripts/bench_decode.py CHECKPOINT --split test

Several checkpoints are timed as one ensemble (see :mod:`nmt.models.ensemble`).
``--input``: one sentence per line (a TSV keeps its first column). Times
:meth:`nmt.inference.translator.Translator.translate` end to end (normalisation, tokenisation,
sorting, decoding, detokenisation) after a warm-up batch; the best of ``--repeats`` runs
counts. ``--precisions`` also decodes under bf16 (or, on CUDA, fp16) autocast, or (on a CPU)
with int8 decoder products, and reports the share of outputs that differ from the first
precision's. ``cuda`` is skipped when absent. Prints a table, then one JSON line; rows also give
the process's CPU seconds, which tell how much the decoder needed when other jobs share the CPU.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from nmt.cli.common import OneLineArgumentParser

PROG = "scripts/bench_decode.py"


def build_parser() -> OneLineArgumentParser:
    parser = OneLineArgumentParser(prog=PROG, description="Benchmark decoding speed.")
    parser.add_argument("checkpoints", type=Path, nargs="+", metavar="CHECKPOINT", help="several: one ensemble")
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--input", type=Path, metavar="FILE", help="sentences, one per line")
    data.add_argument("--split", choices=("dev", "test"), help="the sources of the run's own split")
    parser.add_argument("--data-path", type=Path, metavar="FILE", help="--split: the corpus, if it moved")
    parser.add_argument("--limit", type=int, default=2000, metavar="N", help="sentences to decode (default 2000)")
    parser.add_argument(
        "--strategies", nargs="+", default=["greedy", "beam5"], help="greedy, sample, beamN (default: greedy beam5)"
    )
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16, 64], metavar="B")
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"], help="default: cpu cuda")
    parser.add_argument("--threads", type=int, metavar="N", help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--precisions",
        nargs="+",
        choices=("fp32", "bf16", "fp16", "int8"),
        default=["fp32"],
        help="decoding precisions (default fp32); fp16 is skipped on a CPU, int8 on a GPU",
    )
    parser.add_argument("--repeats", type=int, default=1, metavar="R", help="runs per setting; the best counts")
    return parser


def strategy_options(name: str):
    from nmt.decoding import DecodingOptions

    if name.startswith("beam"):
        return DecodingOptions(strategy="beam", beam_size=int(name[4:] or 5))
    if name in ("greedy", "sample"):
        return DecodingOptions(strategy=name)
    raise ValueError(f"unknown strategy {name!r}: use greedy, sample or beamN (e.g. beam5)")


def load_sources(args, translator) -> list[str]:
    if args.split:
        return [source for source, _ in translator.split_pairs(args.split, args.data_path)]
    from nmt.cli.common import read_lines

    with open(args.input, "rb") as stream:
        return [line.split("\t")[0] for line in read_lines(stream, str(args.input)) if line.strip()]


def bench(args) -> list[dict]:
    import torch

    from nmt.inference.translator import Translator

    if args.threads:
        torch.set_num_threads(args.threads)
    strategies = {name: strategy_options(name) for name in args.strategies}
    results = []
    sources = None
    for device in args.devices:
        if device.startswith("cuda") and not torch.cuda.is_available():
            print(f"{device}: not available, skipped", file=sys.stderr)
            continue
        reference: dict[tuple[str, int], list[str]] = {}
        for precision in args.precisions:
            if precision == "fp16" and not device.startswith("cuda"):
                print(f"{device}: fp16 needs a GPU, skipped", file=sys.stderr)
                continue
            if precision == "int8" and device.startswith("cuda"):
                print(f"{device}: int8 runs on a CPU only, skipped", file=sys.stderr)
                continue
            translator = Translator.from_checkpoints(args.checkpoints, device=device, precision=precision)
            if sources is None:
                sources = load_sources(args, translator)[: args.limit]
                if not sources:
                    raise ValueError("no sentences to decode")
            for name, options in strategies.items():
                for batch_size in args.batch_sizes:
                    row, texts = time_setting(translator, sources, options, batch_size, args.repeats)
                    row = {"device": device, "precision": precision, "strategy": name, **row}
                    first = reference.setdefault((name, batch_size), texts)
                    row["changed_outputs"] = round(sum(a != b for a, b in zip(first, texts)) / len(texts), 4)
                    results.append(row)
                    print(
                        f"{device:6} {precision:4} {name:8} batch {batch_size:4}  {row['sentences_per_second']:8.1f} sent/s"
                        f"  ({len(sources)} sentences in {row['seconds']:.2f} s, {row['cpu_seconds']:.2f} s CPU;"
                        f" {100 * row['changed_outputs']:.1f}% outputs changed)",
                        flush=True,
                    )
    return results


def time_setting(translator, sources: list[str], options, batch_size: int, repeats: int) -> tuple[dict, list[str]]:
    """The best of ``repeats`` timed runs after a warm-up batch, and the outputs."""
    import torch

    translator.translate(sources[:batch_size], options, batch_size)  # warm-up
    best, best_cpu = float("inf"), float("inf")
    for _ in range(max(repeats, 1)):
        if translator.device.type == "cuda":
            torch.cuda.synchronize()
        start, start_cpu = time.perf_counter(), time.process_time()
        translations = translator.translate(sources, options, batch_size)
        if translator.device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - start_cpu)
    row = {
        "batch_size": batch_size,
        "sentences": len(sources),
        "seconds": round(best, 3),
        "sentences_per_second": round(len(sources) / best, 1),
        # CPU time of this process: on a CPU shared with other jobs, wall-clock
        # speed understates what the decoder does with the cores it gets.
        "cpu_seconds": round(best_cpu, 3),
    }
    return row, [t.hypotheses[0].text if t.hypotheses else "" for t in translations]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from nmt.inference.checkpoint import CheckpointError

    try:
        results = bench(args)
    except (CheckpointError, ValueError, OSError) as error:
        print(f"{PROG}: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 1
    import torch

    print(json.dumps({"threads": torch.get_num_threads(), "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
