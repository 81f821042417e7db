"""Average the weights of several checkpoints of one run into one inference checkpoint.

    python -m nmt.average RUN/checkpoints/a.ckpt RUN/checkpoints/b.ckpt ... --output avg.ckpt

The checkpoints must hold the same network (task, model and attention config, tokenizers);
the output keeps the last one's config and tokenizers and loads in every tool
(``nmt.translate``, ``python -m nmt.evaluate``, ...). Training writes such an average itself
with ``training.average_last=N`` (``checkpoints/average.ckpt``).

Errors (a bad option, a missing, damaged or mismatched checkpoint, an unwritable output) are
one line on stderr and exit status 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

from nmt.cli.common import OneLineArgumentParser, run_command

PROG = "nmt-average"
SAME = ("task", "model", "attention", "tokenizer")


def average_files(paths: list[Path]) -> dict:
    """The averaged inference checkpoint of ``paths`` (raises CheckpointError if they differ)."""
    from nmt.inference.checkpoint import (
        MODEL_PREFIX,
        PAYLOAD_KEY,
        CheckpointError,
        average_weights,
        checkpoint_config,
        model_state_dict,
    )
    from nmt.inference.loading import load_model

    checkpoints = [load_model(path).checkpoint for path in paths]
    first_config, first_tokens = checkpoint_config(checkpoints[0]), checkpoints[0][PAYLOAD_KEY]["tokenizers"]
    for path, checkpoint in zip(paths[1:], checkpoints[1:]):
        config = checkpoint_config(checkpoint)
        differing = [key for key in SAME if config.get(key) != first_config.get(key)]
        if checkpoint[PAYLOAD_KEY]["tokenizers"] != first_tokens:
            differing.append("tokenizers")
        if differing:
            raise CheckpointError(f"{path} is not the network of {paths[0]}: its {', '.join(differing)} differ")
    averaged = average_weights([model_state_dict(checkpoint) for checkpoint in checkpoints])
    payload = dict(checkpoints[-1][PAYLOAD_KEY])
    payload["inference_only"] = True
    payload["averaged_from"] = [str(path) for path in paths]
    return {PAYLOAD_KEY: payload, "state_dict": {MODEL_PREFIX + key: value for key, value in averaged.items()}}


def write_average(paths: list[Path], output: Path) -> None:
    from nmt.inference.checkpoint import atomic_save

    atomic_save(average_files(paths), output)
    print(f"wrote {output}: the average of {len(paths)} checkpoints")


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--output", type=Path, required=True, help="the averaged checkpoint to write")
    args = parser.parse_args(argv)
    if len(args.checkpoints) < 2:
        parser.error("give at least two checkpoints to average")
    return run_command(PROG, lambda: write_average(args.checkpoints, args.output))


if __name__ == "__main__":
    sys.exit(main())
