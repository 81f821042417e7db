"""A Naive Bayes baseline's checkpoint: its format, loading it, and its evaluation report."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from nmt.baselines.naive_bayes import LinearTextModel
from nmt.evaluation.classification import classification_report, confusion_matrix
from nmt.inference.checkpoint import MODEL_PREFIX, PAYLOAD_KEY, CheckpointError, make_payload

TASK = "baseline"
BASELINE_KEY = "baseline"
"""In the payload of a baseline checkpoint: the model's vocabulary and feature options."""


def evaluate_model(model: LinearTextModel, rows: list[tuple[str, int]], labels: list[str]) -> dict[str, Any]:
    """The ``nmt/cli/evaluate_classifier.py`` report of ``model`` on labelled ``rows``."""
    texts, gold = [t for t, _ in rows], torch.tensor([y for _, y in rows], dtype=torch.long)
    predicted = model.predict(texts)
    return classification_report(confusion_matrix(predicted, gold, len(labels)), labels)


def baseline_checkpoint(model: LinearTextModel, config: Mapping[str, Any], labels: list[str],
                        setting: Mapping[str, float]) -> dict[str, Any]:
    """A checkpoint in the ``nmt`` format (no tokenizer: the n-gram vocabulary is the model's)."""
    description, tensors = model.to_state()
    payload = make_payload(TASK, config, {})
    payload["labels"] = list(labels)
    payload[BASELINE_KEY] = {**description, "setting": dict(setting)}
    return {PAYLOAD_KEY: payload, "state_dict": {MODEL_PREFIX + k: v for k, v in tensors.items()}}


def load_baseline(checkpoint: Mapping[str, Any], path: str | Path = "checkpoint") -> tuple[LinearTextModel, list[str]]:
    """The model and label names of a loaded baseline checkpoint."""
    payload = checkpoint[PAYLOAD_KEY]
    if payload.get("task") != TASK:
        raise CheckpointError(f"{path} is a {payload.get('task')!r} checkpoint, not a baseline one")
    try:
        tensors = {k[len(MODEL_PREFIX):]: v for k, v in checkpoint["state_dict"].items() if k.startswith(MODEL_PREFIX)}
        return LinearTextModel.from_state(payload[BASELINE_KEY], tensors), list(payload["labels"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path} is an incomplete baseline checkpoint: {error}") from error
