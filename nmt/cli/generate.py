"""Generate text with a trained language model (``task=lm``).

    python -m nmt.generate CHECKPOINT [--prompt TEXT ...] [--input FILE] [--output FILE]
        [--max-tokens N] [--strategy sample|greedy] [--temperature T] [--top-k K] [--top-p P]
        [--seed S] [--num-samples N] [--no-repeat-ngram-size N] [--repetition-penalty P]
        [--continuation-only] [--batch-size B]
        [--device auto|cpu|cuda] [--threads N]

Prompts: each ``--prompt`` (repeatable), or else one per line from ``--input`` or stdin
(UTF-8, split on ``\\n`` only; input that is not UTF-8 text is refused, as by
``nmt.translate``). An empty prompt generates from the start of a text. When stdin is a
terminal and no prompt is given, the tool asks for one prompt at a time.

Output: **exactly one line per prompt, in order**: the prompt followed by its continuation
(``--continuation-only``: the continuation alone). Generation stops at the end of a text
(EOS) or after ``--max-tokens`` new tokens (characters for a character-level model). With
``--num-samples N`` > 1 a line holds the N samples, most probable first, each followed by its
log-probability: ``text1<TAB>logprob1<TAB>...``. Generated text never holds TABs or newlines.

Sampling (the default strategy) divides the log-probabilities by the temperature first, then
keeps the top-k tokens and the top-p nucleus of that tempered distribution; ``--temperature 0``
or ``--strategy greedy`` picks the most probable token. The random numbers are a hash of the
seed, the prompt, the sample number and the step, so a prompt's text does not depend on the
other prompts or the batch size. ``--no-repeat-ngram-size N`` keeps a text from repeating any
n-gram of N tokens, ``--repetition-penalty P`` makes the tokens already in it less likely
(both count the prompt as part of the text, with either strategy).

Errors are one line on stderr. A bad option or value, a missing, damaged or non-``lm``
checkpoint, input that is not UTF-8 text or CUDA asked for but absent exit with status 2;
a failure of the run itself with 1 (see :mod:`nmt.cli.common`).
"""

from __future__ import annotations

import argparse
import sys
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
from nmt.cli.translate import add_repetition_arguments

PROG = "python -m nmt.generate"


def build_parser() -> OneLineArgumentParser:
    parser = OneLineArgumentParser(
        prog=PROG,
        description="Continue prompts with a trained nmt language model (task=lm).",
        epilog="With --num-samples N > 1 each output line is text1<TAB>logprob1<TAB>...<TAB>textN<TAB>logprobN.",
    )
    parser.add_argument("checkpoint", type=Path, help="a language-model checkpoint (.ckpt)")
    parser.add_argument("--prompt", action="append", metavar="TEXT", help="a prompt (repeatable); default: read lines")
    parser.add_argument(
        "--input", type=Path, metavar="FILE", help="read one prompt per line from FILE instead of stdin"
    )
    parser.add_argument("--output", type=Path, metavar="FILE", help="write to FILE instead of stdout")
    group = parser.add_argument_group("generation")
    group.add_argument(
        "--max-tokens",
        type=int,
        default=100,
        metavar="N",
        help="new tokens at most (characters for a character-level model; default 100)",
    )
    group.add_argument("--strategy", choices=("sample", "greedy"), default="sample")
    group.add_argument(
        "--temperature",
        type=float,
        default=None,
        metavar="T",
        help="sample: divides log-probabilities before top-k/top-p (default 1; 0 = greedy)",
    )
    group.add_argument("--top-k", type=int, default=None, metavar="K", help="sample: keep the K best tokens (0 = all)")
    group.add_argument("--top-p", type=float, default=None, metavar="P", help="sample: nucleus mass (1 = all)")
    group.add_argument("--seed", type=int, default=0, metavar="S", help="sample: the same seed gives the same text")
    group.add_argument("--num-samples", type=int, default=1, metavar="N", help="sample: continuations per prompt")
    add_repetition_arguments(group)
    group.add_argument("--continuation-only", action="store_true", help="write the generated text without the prompt")
    run = parser.add_argument_group("running")
    run.add_argument("--batch-size", type=positive_int, default=64, metavar="B", help="prompts per batch (default 64)")
    add_running_arguments(run, precision=False)
    return parser


def generation_options(args: argparse.Namespace, parser: argparse.ArgumentParser):
    """Checked :class:`~nmt.inference.generator.GenerationOptions`; a bad value exits with status 2."""
    from nmt.inference.generator import GenerationOptions

    if args.strategy == "greedy":
        given = [name for name in ("temperature", "top_k", "top_p") if getattr(args, name) is not None]
        if given or args.num_samples > 1:
            options = ", ".join(
                f"--{n.replace('_', '-')}" for n in given + (["num_samples"] if args.num_samples > 1 else [])
            )
            parser.error(f"{options} apply to --strategy sample, not greedy")
    if args.prompt is not None and args.input is not None:
        parser.error("give prompts with --prompt or --input, not both")
    try:
        return GenerationOptions(
            max_tokens=args.max_tokens,
            strategy=args.strategy,
            temperature=1.0 if args.temperature is None else args.temperature,
            top_k=args.top_k or 0,
            top_p=1.0 if args.top_p is None else args.top_p,
            seed=args.seed,
            num_samples=args.num_samples,
            no_repeat_ngram_size=args.no_repeat_ngram_size,
            repetition_penalty=args.repetition_penalty,
        )
    except ValueError as error:
        parser.error(str(error))


def format_generation(generation, num_samples: int, continuation_only: bool) -> str:
    """The output line for one prompt (see the module docstring)."""

    def shown(sample) -> str:
        return one_line(sample.continuation if continuation_only else sample.text)

    if num_samples <= 1:
        return shown(generation.samples[0])
    return "\t".join(f"{shown(sample)}\t{sample.log_prob:.4f}" for sample in generation.samples)


def _interactive(generator, options, args, out: TextIO) -> None:
    print("Type a prompt and press Enter (Ctrl-D to quit).", file=sys.stderr)
    while True:
        print("> ", end="", file=sys.stderr, flush=True)
        line = sys.stdin.readline()
        if not line:
            print(file=sys.stderr)
            return
        [generation] = generator.generate([line.rstrip("\n")], options)
        print(format_generation(generation, options.num_samples, args.continuation_only), file=out, flush=True)


def run(args: argparse.Namespace, options) -> None:
    apply_threads(args.threads)
    from nmt.inference.generator import TextGenerator

    device = resolve_device(args.device)  # fail on a missing GPU before loading anything
    generator = TextGenerator.from_checkpoint(args.checkpoint, device=device)
    interactive = args.prompt is None and args.input is None and sys.stdin.isatty()
    prompts: list[str] = []
    if args.prompt is not None:
        prompts = list(args.prompt)
    elif args.input is not None:
        with open(args.input, "rb") as stream:
            prompts = read_lines(stream, str(args.input))
    elif not interactive:
        prompts = read_lines(sys.stdin.buffer)
    with output_stream(args.output) as out:
        if interactive:
            _interactive(generator, options, args, out)
            return
        for generation in generator.generate(prompts, options, args.batch_size):
            out.write(format_generation(generation, options.num_samples, args.continuation_only) + "\n")
        out.flush()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    options = generation_options(args, parser)
    utf8_stdout()
    return run_command(PROG, lambda: run(args, options))


if __name__ == "__main__":
    sys.exit(main())
