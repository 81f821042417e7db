"""The one definition of the checkpoint format.

A checkpoint is Lightning's file (weights, optimiser and loop state for exact resume) plus an
``"nmt"`` entry that makes it self-contained for the tools::

    checkpoint["nmt"] = {
        "format_version": 1,
        "task": "translation" | "classification",
        "config": {...},                 # the resolved run config, plain types only
        "tokenizers": {"source": {...}, "target": {...}},   # Tokenizer.to_state()
    }

Every value is a plain Python type or a tensor, so the whole file loads with
``torch.load(path, weights_only=True)``: no pickled code runs when a checkpoint is opened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from nmt.data.tokenizers import Tokenizer, tokenizer_from_state

PAYLOAD_KEY = "nmt"
FORMAT_VERSION = 1
MODEL_PREFIX = "model."


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, unreadable, or not one of ours."""


def make_payload(task: str, config: Mapping[str, Any], tokenizers: Mapping[str, Tokenizer]) -> dict:
    """The ``"nmt"`` entry written into every checkpoint."""
    return {
        "format_version": FORMAT_VERSION,
        "task": task,
        "config": dict(config),
        "tokenizers": {name: tok.to_state() for name, tok in tokenizers.items()},
    }


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint safely (``weights_only=True``) and check it is an ``nmt`` one."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path} (give the path of a .ckpt file)")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many types for a damaged file
        # torch's own message suggests weights_only=False; we never do that for a file we
        # cannot vouch for, so only its first line is kept.
        first_line = (str(error).strip().splitlines() or [""])[0][:160]
        raise CheckpointError(
            f"cannot read checkpoint {path}: {type(error).__name__}: {first_line} "
            "(the file is damaged, truncated, or not an nmt checkpoint)"
        ) from error
    payload = checkpoint.get(PAYLOAD_KEY) if isinstance(checkpoint, dict) else None
    if not isinstance(payload, dict) or "task" not in payload:
        raise CheckpointError(f"{path} is not an nmt checkpoint (no {PAYLOAD_KEY!r} entry)")
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {payload['format_version']}, newer than this "
            f"nmt ({FORMAT_VERSION}): upgrade nmt"
        )
    return checkpoint


def checkpoint_tokenizers(checkpoint: Mapping[str, Any]) -> dict[str, Tokenizer]:
    """The tokenizers stored in a loaded checkpoint, by role (``source``, ``target``)."""
    states = checkpoint[PAYLOAD_KEY]["tokenizers"]
    return {name: tokenizer_from_state(state) for name, state in states.items()}


def checkpoint_config(checkpoint: Mapping[str, Any]) -> dict:
    return checkpoint[PAYLOAD_KEY]["config"]


def model_state_dict(checkpoint: Mapping[str, Any], prefix: str = MODEL_PREFIX) -> dict:
    """The network's weights, with the LightningModule's attribute prefix removed."""
    return {
        key[len(prefix) :]: value
        for key, value in checkpoint["state_dict"].items()
        if key.startswith(prefix)
    }
