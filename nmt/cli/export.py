"""Write an inference-only copy of a checkpoint: weights, tokenizers and config, nothing else.

    python -m nmt.export CHECKPOINT OUT [--dtype float32|float16|bfloat16]

The optimiser's moments, loop, RNG and callback states that only resuming needs are left
out (the training figures -- steps, best dev score, training time -- are kept). The result
loads in every tool as the checkpoint did (``nmt.translate``, ``nmt.classify``,
``python -m nmt.evaluate``, ``python -m nmt.serve``, ``model.encoder.init_from=``), with
``torch.load(weights_only=True)``; training cannot resume from it. ``--dtype float16``
halves the file again; the tools cast the weights back to float32 when they load them, so
outputs can differ from the original's in rare near-ties.

Prints one line: the sizes before and after. Errors (a bad option, a missing or damaged
checkpoint, an unwritable output) are one line on stderr and exit status 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

from nmt.cli.common import OneLineArgumentParser, run_command

PROG = "python -m nmt.export"
DTYPES = ("float32", "float16", "bfloat16")


def megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def export(source: Path, target: Path, dtype: str = "float32") -> tuple[int, int]:
    """Write the inference-only file; return (bytes before, bytes after)."""
    import torch

    from nmt.inference.checkpoint import atomic_save, inference_checkpoint
    from nmt.inference.loading import load_model

    if target.resolve() == source.resolve():
        raise ValueError(f"OUT is the checkpoint itself ({source}): give another path")
    loaded = load_model(source)  # any task; a file whose network does not rebuild is refused here
    weights_dtype = None if dtype == "float32" else getattr(torch, dtype)
    atomic_save(inference_checkpoint(loaded.checkpoint, weights_dtype), target)
    return source.stat().st_size, target.stat().st_size


def report_export(source: Path, target: Path, dtype: str) -> None:
    before, after = export(source, target, dtype)
    saved = before - after
    print(
        f"wrote {target}: {megabytes(after)} (checkpoint {megabytes(before)}; "
        f"{megabytes(saved)} saved, {100 * saved / max(before, 1):.0f}%)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="a training checkpoint (.ckpt)")
    parser.add_argument("out", type=Path, help="the inference-only file to write (e.g. model.pt)")
    parser.add_argument(
        "--dtype",
        choices=DTYPES,
        default="float32",
        help="type of the stored weights (default float32: outputs identical to the checkpoint's)",
    )
    args = parser.parse_args(argv)
    return run_command(PROG, lambda: report_export(args.checkpoint, args.out, args.dtype))


if __name__ == "__main__":
    sys.exit(main())
