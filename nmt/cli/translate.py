"""Translate text with a trained checkpoint.

    python -m nmt.translate CHECKPOINT [CHECKPOINT ...] [--strategy greedy|sample|beam] [--beam-size N]
        [--n-best N] [--length-penalty A] [--beam-patience P|none] [--coverage-penalty BETA]
        [--temperature T] [--top-k K] [--top-p P] [--seed S]
        [--no-repeat-ngram-size N] [--repetition-penalty P] [--batch-size B] [--input FILE] [--output FILE]
        [--output-format text|jsonl] [--replace-unk] [--device auto|cpu|cuda] [--plot-attention DIR]
        [--prefix TEXT | --prefix-from-input] [--constraint TEXT ... | --constraints-from-input]
        [--to LANG | --direction SRC-TGT]

Several checkpoints decode as one ensemble: at every step the mean of their next-token
probabilities (:mod:`nmt.models.ensemble`). They must share both tokenizers; a checkpoint
whose tokenizers differ from the first one's is refused with a one-line error naming it.

Input: one sentence per line, from ``--input`` or stdin (UTF-8; invalid bytes become
U+FFFD, a UTF-8 byte-order mark is dropped). Lines are separated by ``\\n`` only (a trailing
``\\r`` is dropped); other control characters inside a line are normalised away like in
training. Input that is not UTF-8 text at all (UTF-16 or UTF-32, compressed, binary, or
mostly invalid UTF-8) is refused with a message that says how to convert it, see
:mod:`nmt.data.input_check`. When stdin is a terminal the tool prompts for one sentence at
a time.

Output: **exactly one line per input line, in input order**. An empty (or whitespace-only)
line gives an empty line. A line longer than the model's limit (3 x the training
``data.max_length`` tokens) is truncated, with a warning on stderr naming the line.

n-best format (``--n-best N`` with N > 1, beam or sample): still one line per input line,
holding the N hypotheses best first, each followed by its score, all TAB-separated::

    hyp1<TAB>score1<TAB>hyp2<TAB>score2<TAB>...<TAB>hypN<TAB>scoreN

The score is the log-probability divided by the GNMT length penalty for beam search, and
the plain log-probability for sampling. Translations never contain TABs or newlines.

JSON lines (``--output-format jsonl``): still one line per input line, a JSON object with
the source tokens, the best translation and, per hypothesis (n-best included), its tokens,
each token's log-probability, the log-probability, the score and its length
normalisation, and a hard alignment from the attention with its Pharaoh pairs (see
:mod:`nmt.cli.records`). An empty line gives an object with no hypotheses.

Prefix-constrained decoding: ``--prefix TEXT`` makes every translation start with TEXT
(tokenised with the target tokenizer, without end-of-sentence), and the strategy continues
after it; with ``--prefix-from-input`` each input line is ``source<TAB>prefix`` (a line
without a TAB has no prefix). The prefix's tokens count in the scores. A prefix longer than
its line's output limit is a one-line error naming the line (see
:mod:`nmt.decoding.prefix`).

A model trained on several directions (``data.directions``) translates in its first one
unless ``--to fr`` or ``--direction en-fr`` says otherwise; a direction it was not trained on,
or any direction asked of a single-direction model, is a one-line error (status 2).

Lexical constraints (beam search only): ``--constraint TEXT``, repeatable, is a phrase every
translation must contain somewhere; with ``--constraints-from-input`` each input line is
``source<TAB>phrase1<TAB>phrase2...`` (fairseq's format; no TAB: no constraints). A phrase is
tokenised alone with the target tokenizer, as it would be after a space inside a sentence
(with SentencePiece its first piece is word-initial), and matched as that run of tokens (see
:mod:`nmt.decoding.constraints`). An empty phrase, one holding a character the target vocabulary
lacks, constraints (and prefix) longer than the line's output limit, and constraints with
another strategy are one-line errors. ``--constraints-from-input`` does not combine with
``--prefix-from-input`` (both read TAB-separated fields); ``--prefix TEXT`` does.

``--replace-unk`` replaces each ``<unk>`` the model produced by the source token it
attends to most (:mod:`nmt.inference.alignment`); it needs a model with attention.

Errors are one line on stderr. A bad option or value, a missing, damaged or non-translation
checkpoint, ensemble members with different tokenizers, input that is not UTF-8 text or
CUDA asked for but absent exit with status 2; a failure of the run itself (e.g. out of memory) with 1 (see :mod:`nmt.cli.common`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TextIO

from nmt.cli.common import (
    OneLineArgumentParser,
    add_running_arguments,
    apply_threads,
    one_line,
    output_stream,
    positive_int,
    read_lines,
    resolve_device,
    run_command,
    utf8_stdout,
)

PROG = "python -m nmt.translate"


def add_decoding_arguments(parser: argparse.ArgumentParser) -> None:
    """The decoding, batching and device options shared by every translation tool."""
    group = parser.add_argument_group("decoding")
    group.add_argument("--strategy", choices=("greedy", "sample", "beam"), default="greedy")
    group.add_argument("--beam-size", type=int, default=5, metavar="N", help="beam: hypotheses kept (default 5)")
    group.add_argument(
        "--n-best",
        type=int,
        default=1,
        metavar="N",
        help="beam or sample: outputs per line, TAB-separated with scores (default 1)",
    )
    group.add_argument(
        "--length-penalty",
        type=float,
        default=1.0,
        metavar="A",
        help="beam: GNMT alpha, score = logprob / ((5+len)/6)^A (default 1.0; 0 = none)",
    )
    group.add_argument(
        "--beam-patience",
        type=_patience,
        default=2,
        metavar="P",
        help="beam: a sentence ends once no live beam could win within P more steps "
        "(default 2; 0 = OpenNMT-py's rule; none = up to the length limit)",
    )
    group.add_argument(
        "--coverage-penalty",
        type=float,
        default=0.0,
        metavar="BETA",
        help="beam: GNMT coverage penalty beta * sum log(min(attention sum, 1)) added to final scores (default 0)",
    )
    group.add_argument(
        "--temperature", type=float, default=1.0, metavar="T", help="sample: <= 1e-5 is greedy (default 1)"
    )
    group.add_argument("--top-k", type=int, default=0, metavar="K", help="sample: keep the K best tokens (0 = all)")
    group.add_argument("--top-p", type=float, default=1.0, metavar="P", help="sample: nucleus mass (1 = all)")
    group.add_argument("--seed", type=int, default=0, metavar="S", help="sample: the same seed gives the same samples")
    add_repetition_arguments(group)
    group.add_argument(
        "--max-len-ratio", type=float, default=2.0, metavar="R", help="output limit: R x source tokens + 10 (default 2)"
    )
    run = parser.add_argument_group("running")
    run.add_argument(
        "--batch-size", type=positive_int, default=64, metavar="B", help="sentences per batch (default 64)"
    )
    add_running_arguments(run)
    run.add_argument("--plot-attention", type=Path, metavar="DIR", help="write one attention heatmap PNG per sentence")


def add_repetition_arguments(group: argparse._ArgumentGroup) -> None:
    """``--no-repeat-ngram-size`` and ``--repetition-penalty``, for translation and generation alike."""
    group.add_argument(
        "--no-repeat-ngram-size",
        type=int,
        default=0,
        metavar="N",
        help="an output never repeats an n-gram of N tokens (default 0 = off)",
    )
    group.add_argument(
        "--repetition-penalty",
        type=float,
        default=1.0,
        metavar="P",
        help="CTRL penalty: logits of tokens already generated divided by P if positive, "
        "multiplied if negative (default 1 = off)",
    )


def _patience(text: str) -> int | None:
    """``--beam-patience``: a number of steps, or ``none``."""
    if text.lower() == "none":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of steps or 'none', got {text!r}") from None


def decoding_options(args: argparse.Namespace):
    """A :class:`~nmt.decoding.DecodingOptions` from parsed arguments (ValueError if invalid);
    also applies ``--threads``."""
    from nmt.decoding import DecodingOptions

    apply_threads(args.threads)
    return DecodingOptions(
        strategy=args.strategy,
        beam_size=args.beam_size,
        n_best=args.n_best,
        length_penalty=args.length_penalty,
        beam_patience=args.beam_patience,
        coverage_penalty=args.coverage_penalty,
        no_repeat_ngram_size=args.no_repeat_ngram_size,
        repetition_penalty=args.repetition_penalty,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
        max_len_ratio=args.max_len_ratio,
    )


def add_checkpoints_argument(parser: argparse.ArgumentParser) -> None:
    """The positional checkpoints of every translation tool: one model, or an ensemble."""
    parser.add_argument(
        "checkpoints",
        type=Path,
        nargs="+",
        metavar="CHECKPOINT",
        help="a translation checkpoint (.ckpt); several decode as one ensemble (mean of their probabilities)",
    )


def add_replace_unk_argument(parser: argparse.ArgumentParser) -> None:
    """``--replace-unk`` of the translation tools (:meth:`Translator.translate`'s ``replace_unk``)."""
    parser.add_argument(
        "--replace-unk",
        action="store_true",
        help="replace each <unk> in the output by the source token it attends to most (needs attention)",
    )


def add_direction_arguments(parser: argparse.ArgumentParser) -> None:
    """``--to`` / ``--direction``: which direction a model trained on several translates in."""
    group = parser.add_argument_group("direction (models trained on several, data.directions)")
    choice = group.add_mutually_exclusive_group()
    choice.add_argument("--to", metavar="LANG", help="translate into LANG, e.g. fr (default: the first direction)")
    choice.add_argument("--direction", metavar="SRC-TGT", help="translate in this direction, e.g. en-fr")


def build_parser() -> OneLineArgumentParser:
    parser = OneLineArgumentParser(
        prog=PROG,
        description="Translate one sentence per line with a trained nmt checkpoint.",
        epilog="With --n-best N > 1 each output line is hyp1<TAB>score1<TAB>...<TAB>hypN<TAB>scoreN.",
    )
    add_checkpoints_argument(parser)
    parser.add_argument("--input", type=Path, metavar="FILE", help="read lines from FILE instead of stdin")
    parser.add_argument("--output", type=Path, metavar="FILE", help="write translations to FILE instead of stdout")
    parser.add_argument(
        "--output-format",
        choices=OUTPUT_FORMATS,
        default="text",
        help="text: the translation (n-best: TAB-separated with scores); jsonl: one JSON object per line "
        "with tokens, token log-probabilities, scores and the alignment (default text)",
    )
    add_replace_unk_argument(parser)
    prefix = parser.add_mutually_exclusive_group()
    prefix.add_argument(
        "--prefix",
        metavar="TEXT",
        help="every translation starts with TEXT (target language); decoding continues after it",
    )
    prefix.add_argument(
        "--prefix-from-input",
        action="store_true",
        help="each input line is source<TAB>prefix: its translation starts with the prefix (no TAB: none)",
    )
    add_direction_arguments(parser)
    constraint = parser.add_mutually_exclusive_group()
    constraint.add_argument(
        "--constraint",
        action="append",
        metavar="TEXT",
        help="beam: every translation contains the phrase TEXT (target language) somewhere; repeat for several",
    )
    constraint.add_argument(
        "--constraints-from-input",
        action="store_true",
        help="beam: each input line is source<TAB>phrase1<TAB>phrase2...: its translation contains every phrase",
    )
    add_decoding_arguments(parser)
    return parser


def check_constraint_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse, as an option error, constraints without beam search and two TAB-separated input formats."""
    if not (args.constraint or args.constraints_from_input):
        return
    if args.strategy != "beam":
        parser.error(f"lexical constraints need --strategy beam, not {args.strategy}")
    if args.constraints_from_input and args.prefix_from_input:
        parser.error(
            "--constraints-from-input and --prefix-from-input both read TAB-separated fields: give the prefix "
            "with --prefix TEXT, or the constraints with --constraint TEXT"
        )


def split_inputs(
    lines: list[str], args: argparse.Namespace
) -> tuple[list[str], list[str] | None, list[list[str]] | None]:
    """The sources to translate, each one's prefix and each one's constraints (None: not asked for).

    Prefix: ``--prefix`` for every line, or the text after each line's first TAB
    (``--prefix-from-input``). Constraints: the ``--constraint`` phrases for every line, or
    the TAB-separated fields after each line's source (``--constraints-from-input``).
    """
    prefixes: list[str] | None = None
    constraints: list[list[str]] | None = None
    if args.prefix_from_input:
        pairs = [line.split("\t", 1) for line in lines]
        lines, prefixes = [pair[0] for pair in pairs], [pair[1] if len(pair) > 1 else "" for pair in pairs]
    elif args.prefix is not None:
        prefixes = [args.prefix] * len(lines)
    if getattr(args, "constraints_from_input", False):
        fields = [line.split("\t") for line in lines]
        lines, constraints = [row[0] for row in fields], [row[1:] for row in fields]
    elif getattr(args, "constraint", None):
        constraints = [list(args.constraint) for _ in lines]
    return lines, prefixes, constraints


OUTPUT_FORMATS = ("text", "jsonl")


def format_translation(translation, n_best: int) -> str:
    """The output line for one input line (see the module docstring)."""
    if n_best <= 1:
        return one_line(translation.text)
    return "\t".join(f"{one_line(hyp.text)}\t{hyp.score:.4f}" for hyp in translation.hypotheses)


def output_line(translation, options, output_format: str = "text") -> str:
    """The output line for one input line in ``output_format`` (text or jsonl)."""
    if output_format == "jsonl":
        from nmt.cli.records import json_line, translation_record

        return json_line(translation_record(translation, options))
    return format_translation(translation, options.n_best)


def _interactive(
    translator,
    options,
    out: TextIO,
    plot_dir: Path | None = None,
    *,
    output_format: str = "text",
    replace_unk: bool = False,
    return_attention: bool = False,
    args: argparse.Namespace | None = None,
) -> None:
    """Prompt on stderr, translate each line as it is typed; Ctrl-D ends."""
    print("Type a sentence and press Enter (Ctrl-D to quit).", file=sys.stderr)
    number = 0
    while True:
        print("> ", end="", file=sys.stderr, flush=True)
        line = sys.stdin.readline()
        if not line:
            print(file=sys.stderr)
            return
        number += 1
        sources, prefixes, constraints = (
            split_inputs([line.rstrip("\n")], args) if args else ([line.rstrip("\n")], None, None)
        )
        [translation] = translator.translate(
            sources,
            options,
            first_line=number,
            return_attention=plot_dir is not None or return_attention,
            replace_unk=replace_unk,
            prefixes=prefixes,
            direction=args.direction if args else None,
            to=args.to if args else None,
            constraints=constraints,
        )
        print(output_line(translation, options, output_format), file=out, flush=True)
        if plot_dir is not None:
            from nmt.evaluation.plots import plot_translations

            for path in plot_translations([translation], plot_dir, prefix="line", start=number):
                print(f"attention plot: {path}", file=sys.stderr)


def run(args: argparse.Namespace) -> None:
    options = decoding_options(args)
    from nmt.inference.translator import Translator, decoding_dtype

    device = resolve_device(args.device)  # fail on a missing GPU before loading anything
    decoding_dtype(args.precision, device)
    translator = Translator.from_checkpoints(args.checkpoints, device=device, precision=args.precision)
    translator.direction(args.direction, args.to)  # a direction the model lacks fails before any input is read
    # JSON lines carry the alignment, read off the attention (a model without has none).
    alignment = args.output_format == "jsonl" and translator.has_attention
    interactive = args.input is None and sys.stdin.isatty()
    if not interactive:
        if args.input is not None:
            with open(args.input, "rb") as stream:
                lines = read_lines(stream, str(args.input))
        else:
            lines = read_lines(sys.stdin.buffer)
    with output_stream(args.output) as out:
        if interactive:
            _interactive(
                translator,
                options,
                out,
                args.plot_attention,
                output_format=args.output_format,
                replace_unk=args.replace_unk,
                return_attention=alignment,
                args=args,
            )
            return
        start = time.perf_counter()
        lines, prefixes, constraints = split_inputs(lines, args)
        translations = translator.translate(
            lines,
            options,
            args.batch_size,
            return_attention=args.plot_attention is not None or alignment,
            replace_unk=args.replace_unk,
            progress=sys.stderr.isatty() and len(lines) > 2 * args.batch_size,
            prefixes=prefixes,
            direction=args.direction,
            to=args.to,
            constraints=constraints,
        )
        out.writelines(output_line(t, options, args.output_format) + "\n" for t in translations)
        out.flush()
        if len(lines) > 2 * args.batch_size:
            seconds = time.perf_counter() - start
            print(
                f"translated {len(lines)} lines in {seconds:.1f} s ({len(lines) / max(seconds, 1e-9):.0f} lines/s)",
                file=sys.stderr,
            )
        if args.plot_attention is not None:
            from nmt.evaluation.plots import plot_translations

            plot_translations(translations, args.plot_attention, prefix="line")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_constraint_flags(parser, args)
    utf8_stdout()
    return run_command(PROG, lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
