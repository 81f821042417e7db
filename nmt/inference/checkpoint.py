"""The one definition of the checkpoint format.

A checkpoint is Lightning's file (weights, optimiser and loop state for exact resume) plus an
``"nmt"`` entry that makes it self-contained for the tools::

    checkpoint["nmt"] = {
        "format_version": 1,
        "task": "translation" | "classification" | "lm" | "bilm",
        "config": {...},                 # the resolved run config, plain types only
        "tokenizers": {"source": {...}, "target": {...}},   # Tokenizer.to_state()
    }

Every value is a plain Python type or a tensor, so the whole file loads with
``torch.load(path, weights_only=True)``: no pickled code runs when a checkpoint is opened.

An inference-only file (``nmt/cli/export.py``, :func:`inference_checkpoint`) is the same
``"nmt"`` entry, with ``"inference_only": True`` and ``"training"`` (the figures of
:func:`training_summary`) added, plus a ``"state_dict"`` holding only the network's
weights: no optimiser, loop or RNG state. Every tool loads it like a training checkpoint.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import secrets
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import torch

from nmt.data.tokenizers import Tokenizer, tokenizer_from_state

PAYLOAD_KEY = "nmt"
FORMAT_VERSION = 1
MODEL_PREFIX = "model."


TEMPORARY_MARK = ".tmp-"
"""Checkpoints are first written to ``.<name>.tmp-<pid>-<random>`` beside their target."""


_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")  # torch colours parts of its messages


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, unreadable, or not one of ours."""


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` that a kill at any moment cannot leave half-written.

    The bytes go to a temporary file in the target's own directory (a rename is atomic only
    within one file system, which ``$TMPDIR`` may not be), are flushed to disk with fsync,
    then renamed over the target; the directory is fsynced so that the rename itself
    survives a power loss. The temporary file is removed if anything fails; one orphaned
    by ``kill -9`` is removed by :func:`remove_temporary_files` at the next start.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    temporary = path.parent / f".{path.name}{TEMPORARY_MARK}{os.getpid()}-{secrets.token_hex(4)}"
    try:
        with open(temporary, "wb") as handle:
            handle.write(buffer.getbuffer())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. a platform without directory descriptors
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def temporary_files(directory: str | Path) -> Iterator[Path]:
    """Temporary files :func:`atomic_save` left in ``directory`` (a write that was killed)."""
    directory = Path(directory)
    if directory.is_dir():
        yield from (p for p in directory.glob(f".*{TEMPORARY_MARK}*") if p.is_file())


def remove_temporary_files(directory: str | Path) -> int:
    """Delete orphaned temporary checkpoint files in ``directory``; return how many."""
    removed = 0
    for path in temporary_files(directory):
        path.unlink(missing_ok=True)
        removed += 1
    return removed


def make_payload(task: str, config: Mapping[str, Any], tokenizers: Mapping[str, Tokenizer]) -> dict:
    """The ``"nmt"`` entry written into every checkpoint."""
    return {
        "format_version": FORMAT_VERSION,
        "task": task,
        "config": dict(config),
        "tokenizers": {name: tok.to_state() for name, tok in tokenizers.items()},
    }


def _is_zip(path: Path) -> bool:
    """torch.save's format (a zip archive); only that can be memory-mapped."""
    with open(path, "rb") as handle:
        return handle.read(4) == b"PK\x03\x04"


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint safely (``weights_only=True``) and check it is an ``nmt`` one.

    The file is memory-mapped: tensors nobody reads (the optimiser's moments, for a tool
    that only translates) are never read from disk.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path} (give the path of a .ckpt file)")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True, mmap=_is_zip(path))
    except pickle.UnpicklingError as error:
        # torch's message goes on to explain how to load the file unsafely: not for a file
        # that nobody vouches for, so it is not passed on.
        raise CheckpointError(
            f"cannot read checkpoint {path}: it holds pickled Python objects, which could run "
            "code when loaded, so it is refused (nmt checkpoints hold only tensors and plain "
            "values: this file was not written by nmt, or was altered)"
        ) from error
    except Exception as error:  # torch raises many types for a damaged file
        first_line = _ANSI_ESCAPE.sub("", (str(error).strip().splitlines() or [""])[0])[:160]
        raise CheckpointError(
            f"cannot read checkpoint {path}: {type(error).__name__}: {first_line} "
            "(the file is damaged, truncated, or not an nmt checkpoint)"
        ) from error
    payload = checkpoint.get(PAYLOAD_KEY) if isinstance(checkpoint, dict) else None
    if not isinstance(payload, dict) or "task" not in payload:
        raise CheckpointError(f"{path} is not an nmt checkpoint (no {PAYLOAD_KEY!r} entry)")
    version = payload.get("format_version", 0)  # absent: written before versions existed
    if not isinstance(version, int) or isinstance(version, bool):
        raise CheckpointError(
            f"{path} has an invalid checkpoint format_version {version!r} (not an integer): "
            "the file is damaged or was not written by nmt"
        )
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {version}, newer than this nmt ({FORMAT_VERSION}): upgrade nmt"
        )
    for key in ("config", "tokenizers"):
        if not isinstance(payload.get(key), dict):
            raise CheckpointError(f"{path} is an incomplete nmt checkpoint: no {key!r} in its {PAYLOAD_KEY!r} entry")
    return checkpoint


def checkpoint_tokenizers(checkpoint: Mapping[str, Any]) -> dict[str, Tokenizer]:
    """The tokenizers stored in a loaded checkpoint, by role (``source``, ``target``)."""
    states = checkpoint[PAYLOAD_KEY]["tokenizers"]
    return {name: tokenizer_from_state(state) for name, state in states.items()}


def checkpoint_config(checkpoint: Mapping[str, Any]) -> dict:
    return checkpoint[PAYLOAD_KEY]["config"]


def model_state_dict(checkpoint: Mapping[str, Any], prefix: str = MODEL_PREFIX) -> dict:
    """The network's weights, with the LightningModule's attribute prefix removed."""
    return {key[len(prefix) :]: value for key, value in checkpoint["state_dict"].items() if key.startswith(prefix)}


# -- inference-only files (nmt/cli/export.py) ----------------------------------------------
INFERENCE_ONLY_KEY = "inference_only"
"""Set in the payload of a file written by :func:`inference_checkpoint`."""

TRAINING_SUMMARY_KEY = "training"
"""In an inference-only payload: the :func:`training_summary` of the checkpoint it came from."""


def is_inference_only(checkpoint: Mapping[str, Any]) -> bool:
    """True for a file written by :func:`inference_checkpoint` (it cannot resume training)."""
    return bool(checkpoint[PAYLOAD_KEY].get(INFERENCE_ONLY_KEY))


def _number(value: Any) -> float | None:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def training_summary(checkpoint: Mapping[str, Any]) -> dict:
    """What a checkpoint records of its training, as plain numbers.

    Keys, each present only when the checkpoint has it: ``steps`` (optimiser steps),
    ``epoch``, ``monitor`` (the dev metric that selected checkpoints, e.g. ``val/bleu``),
    ``best_score`` (its best value) and ``train_seconds`` (Lightning's timer, validation
    excluded). An inference-only file carries the summary of the checkpoint it came from.
    """
    payload = checkpoint[PAYLOAD_KEY]
    if isinstance(payload.get(TRAINING_SUMMARY_KEY), dict):
        return dict(payload[TRAINING_SUMMARY_KEY])
    summary: dict[str, Any] = {}
    for key, name in (("global_step", "steps"), ("epoch", "epoch")):
        if isinstance(checkpoint.get(key), int):
            summary[name] = checkpoint[key]
    callbacks = checkpoint.get("callbacks")
    for key, state in callbacks.items() if isinstance(callbacks, dict) else ():
        if not isinstance(state, dict):
            continue
        best = _number(state.get("best_model_score"))
        if isinstance(state.get("monitor"), str) and best is not None:
            summary["monitor"], summary["best_score"] = state["monitor"], best
        elapsed = state.get("time_elapsed") if key == "Timer" else None
        if isinstance(elapsed, dict) and (train_seconds := _number(elapsed.get("train"))) is not None:
            summary["train_seconds"] = round(train_seconds, 1)
    return summary


def inference_checkpoint(checkpoint: Mapping[str, Any], dtype: torch.dtype | None = None) -> dict:
    """The inference-only form of a loaded checkpoint: what the tools read and nothing else.

    Keeps the ``"nmt"`` payload (config, tokenizers, labels) and the network's weights
    (``state_dict`` entries under :data:`MODEL_PREFIX`); drops the optimiser's moments, the
    loop, RNG and callback states that only resuming needs, keeping the training figures
    (:func:`training_summary`) in the payload. Every tool loads the result as it loads a
    training checkpoint; training cannot resume from it.

    :param dtype: store floating-point weights in this type (e.g. ``torch.float16``, half
        the size); the tools cast them back to float32 when they load them.
    """
    payload = dict(checkpoint[PAYLOAD_KEY])
    payload[TRAINING_SUMMARY_KEY] = training_summary(checkpoint)
    payload[INFERENCE_ONLY_KEY] = True
    weights = {}
    for key, value in checkpoint["state_dict"].items():
        if key.startswith(MODEL_PREFIX):
            if dtype is not None and value.is_floating_point():
                value = value.to(dtype)
            weights[key] = value
    return {PAYLOAD_KEY: payload, "state_dict": weights}


def average_weights(state_dicts: list[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The element-wise mean of several state dicts of one network (checkpoint averaging).

    Floating-point tensors are averaged in float64 and stored in their own dtype; other
    tensors (counters, integer buffers) are taken from the last state dict.
    """
    if not state_dicts:
        raise ValueError("nothing to average: give at least one state dict")
    keys = set(state_dicts[0])
    for other in state_dicts[1:]:
        if set(other) != keys:
            raise ValueError(f"cannot average different networks: keys {sorted(keys ^ set(other))[:5]} differ")
    averaged = {}
    for key, last in state_dicts[-1].items():
        if last.is_floating_point():
            total = cast(torch.Tensor, sum(state[key].to(torch.float64) for state in state_dicts))
            averaged[key] = (total / len(state_dicts)).to(last.dtype)
        else:
            averaged[key] = last.clone()
    return averaged
