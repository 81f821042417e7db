"""BLEU, chrF and TER of a translation checkpoint, single- and multi-reference.

    python -m nmt.evaluate CHECKPOINT [CHECKPOINT ...] --pairs FILE.tsv [decoding options] [--output-dir DIR]
    python -m nmt.evaluate CHECKPOINT --src FILE --ref FILE [--ref FILE ...]
    python -m nmt.evaluate CHECKPOINT --split test [--data-path fra.txt.xz]

``--pairs``: ``source<TAB>reference`` lines (further columns are ignored); lines with the
same source are several references of one segment. ``--src``/``--ref``: line-aligned files,
one reference file per reference stream (an empty line there means "no reference").
``--split``: the run's own held-out split, rebuilt from the checkpoint's config, grouped by
source like ``--pairs``; for a model trained on several directions (``data.directions``), each
direction is scored separately (``report["directions"]``, output dirs ``SPLIT-en-fr-...``)
unless ``--to``/``--direction`` picks one. ``--pairs``/``--src`` are translated in the
model's first direction, or the one ``--to``/``--direction`` names.

Writes ``hypotheses.txt`` (one line per segment), ``segments.tsv`` (source, hypothesis,
references) and ``report.json`` to ``--output-dir`` (default: ``RUN_DIR/eval/NAME-STRATEGY``)
and prints the report as one JSON line, the last line of stdout. The decoding options are
those of ``python -m nmt.translate``, ``--replace-unk`` included (the report counts the
outputs that hold an unknown token, replaced or not, in ``outputs_with_unknown``); several
checkpoints are evaluated as one ensemble (its default output directory is the first
checkpoint's, ``NAME-STRATEGY-ensembleK``, and the report lists the members).

Errors are one line on stderr: a bad option, a missing, damaged or non-translation
checkpoint or unreadable data exit with status 2, a failure of the run itself with 1.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from nmt.cli.common import OneLineArgumentParser, read_lines, run_command
from nmt.cli.translate import (
    add_checkpoints_argument,
    add_decoding_arguments,
    add_direction_arguments,
    add_replace_unk_argument,
    decoding_options,
)

PROG = "python -m nmt.evaluate"


def build_parser() -> OneLineArgumentParser:
    parser = OneLineArgumentParser(prog=PROG, description="BLEU/chrF/TER of a translation checkpoint.")
    add_checkpoints_argument(parser)
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--pairs", type=Path, metavar="FILE.tsv", help="source<TAB>reference lines")
    data.add_argument("--src", type=Path, metavar="FILE", help="sources, one per line (with --ref)")
    data.add_argument("--split", choices=("train", "dev", "test"), help="the run's own split")
    parser.add_argument("--ref", type=Path, action="append", metavar="FILE", help="references (repeatable)")
    parser.add_argument("--data-path", type=Path, metavar="FILE", help="--split: the corpus, if it moved")
    parser.add_argument("--limit", type=int, metavar="N", help="evaluate the first N segments only")
    parser.add_argument("--output-dir", type=Path, metavar="DIR")
    add_replace_unk_argument(parser)
    add_direction_arguments(parser)
    add_decoding_arguments(parser)
    return parser


def read_text_lines(path: Path) -> list[str]:
    """Lines of a UTF-8 file as the translate CLI reads them (a UTF-16 or binary file is
    refused with a ValueError that says how to convert it)."""
    with open(path, "rb") as stream:
        return read_lines(stream, str(path))


def read_pairs(path: Path) -> list[tuple[str, str]]:
    """``source<TAB>reference`` lines; blank lines are skipped."""
    pairs = []
    for number, line in enumerate(read_text_lines(path), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2:
            raise ValueError(f"{path}:{number}: expected source<TAB>reference, found no TAB")
        pairs.append((fields[0], fields[1]))
    return pairs


def load_segments(args, translator, direction=None) -> tuple[list, str]:
    """The segments to score and a short name for them (``--split`` of a model trained on
    several directions: those of ``direction``)."""
    from nmt.data.text import normalize_text
    from nmt.evaluation.bleu import Segment, group_by_source

    if args.pairs:
        return group_by_source(read_pairs(args.pairs)), args.pairs.stem
    if args.split and direction is not None:
        pairs = translator.split_pairs(args.split, args.data_path, direction=str(direction))
        return group_by_source(pairs), f"{args.split}-{direction}"
    if args.split:
        return group_by_source(translator.split_pairs(args.split, args.data_path)), args.split
    if not args.ref:
        raise ValueError("--src needs at least one --ref FILE")
    sources = read_text_lines(args.src)
    streams = [read_text_lines(path) for path in args.ref]
    for path, stream in zip(args.ref, streams):
        if len(stream) != len(sources):
            raise ValueError(f"{path} has {len(stream)} lines but {args.src} has {len(sources)}")
    segments = []
    for i, source in enumerate(sources):
        refs = [normalize_text(stream[i]) for stream in streams]
        segments.append(Segment(normalize_text(source), [r for r in refs if r] or [""]))
    return segments, args.src.stem


def default_output_dir(checkpoint: Path, name: str, options, members: int = 1) -> Path:
    """``RUN_DIR/eval/NAME-STRATEGY`` of ``checkpoint``'s run (``-ensembleK`` for K members)."""
    run_dir = checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent
    strategy = f"beam{options.beam_size}" if options.strategy == "beam" else options.strategy
    ensemble = f"-ensemble{members}" if members > 1 else ""
    return run_dir / "eval" / f"{name}-{strategy}{ensemble}"


def evaluate(args) -> dict:
    """The report of one evaluation; ``--split`` of a model trained on several directions
    without ``--to``/``--direction``: one report per direction, under ``directions``."""
    from nmt.inference.translator import Translator

    options = decoding_options(args)
    translator = Translator.from_checkpoints(args.checkpoints, device=args.device, precision=args.precision)
    chosen = translator.direction(args.direction, args.to)
    if args.split and translator.directions and not (args.direction or args.to):
        reports = {str(d): evaluate_direction(args, translator, options, d, subdir=True) for d in translator.directions}
        return {"checkpoint": str(args.checkpoints[0]), "data": args.split, "directions": reports}
    return evaluate_direction(args, translator, options, chosen)


def evaluate_direction(args, translator, options, direction, subdir: bool = False) -> dict:
    """Translate and score the segments of ``direction`` (None: a single-direction model);
    ``subdir``: write them to ``--output-dir``/DIRECTION, beside the other directions'."""
    from nmt.evaluation.bleu import corpus_scores

    segments, name = load_segments(args, translator, direction)
    if args.limit:
        segments = segments[: args.limit]
    if not segments:
        raise ValueError("no segments to evaluate")
    start = time.perf_counter()
    translations = translator.translate(
        [segment.source for segment in segments],
        options,
        args.batch_size,
        return_attention=args.plot_attention is not None,
        replace_unk=args.replace_unk,
        progress=sys.stderr.isatty(),
        direction=None if direction is None else str(direction),
    )
    seconds = time.perf_counter() - start
    hypotheses = [translation.text for translation in translations]
    scores = corpus_scores(hypotheses, [segment.references for segment in segments])
    with_unknown = sum(bool(t.hypotheses) and t.hypotheses[0].unknown_tokens > 0 for t in translations)

    first = args.checkpoints[0]
    output_dir = args.output_dir or default_output_dir(first, name, options, len(args.checkpoints))
    if subdir and args.output_dir:
        output_dir = args.output_dir / str(direction)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "hypotheses.txt").write_text("".join(h + "\n" for h in hypotheses), encoding="utf-8")
    (output_dir / "segments.tsv").write_text(
        "".join("\t".join([s.source, h, *s.references]) + "\n" for s, h in zip(segments, hypotheses)),
        encoding="utf-8",
    )
    report = {
        "checkpoint": str(first),
        **({"ensemble": [str(path) for path in args.checkpoints]} if len(args.checkpoints) > 1 else {}),
        "data": name,
        **({"direction": str(direction)} if direction is not None else {}),
        **scores,
        "multi_reference_segments": sum(len(s.references) > 1 for s in segments),
        "truncated_sources": sum(t.truncated for t in translations),
        "outputs_with_unknown": {"count": with_unknown, "share": round(with_unknown / len(segments), 4)},
        "replace_unk": args.replace_unk,
        "decoding": options.describe(),
        "batch_size": args.batch_size,
        "device": str(translator.device),
        "precision": args.precision,
        "decode_seconds": round(seconds, 3),
        "sentences_per_second": round(len(segments) / max(seconds, 1e-9), 1),
        "output_dir": str(output_dir),
    }
    (output_dir / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if args.plot_attention is not None:
        from nmt.evaluation.plots import plot_translations

        plot_translations(translations, args.plot_attention, prefix="segment")
    return report


def print_report(report: dict) -> None:
    """A human summary (per direction where there are several), then the report as one
    JSON line (the last line of stdout)."""
    for direction, one in report.get("directions", {}).items():
        print(f"{direction}:")
        print_summary(one)
    if "directions" not in report:
        print_summary(report)
    print(json.dumps(report, ensure_ascii=False))


def print_summary(report: dict) -> None:
    bleu, chrf, ter = report["bleu"], report["chrf"], report["ter"]
    print(
        f"{report['segments']} segments ({report['references']} references), "
        f"{report['decode_seconds']} s, {report['sentences_per_second']} sentences/s\n"
        f"BLEU multi-ref {bleu['multi_ref']['score']}  ({bleu['multi_ref']['signature']})\n"
        f"BLEU 1st ref   {bleu['single_ref']['score']}  ({bleu['single_ref']['signature']})\n"
        f"chrF multi-ref {chrf['multi_ref']['score']}  1st ref {chrf['single_ref']['score']}\n"
        f"TER  multi-ref {ter['multi_ref']['score']}  1st ref {ter['single_ref']['score']}  "
        f"(lower is better; {ter['multi_ref']['signature']})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.ref and not args.src:
        parser.error("--ref goes with --src")
    return run_command(PROG, lambda: print_report(evaluate(args)))


if __name__ == "__main__":
    sys.exit(main())
