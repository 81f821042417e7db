"""A baseline's (Naive Bayes, NB-SVM, mean word vectors) checkpoint format and its evaluation report (load it with
:func:`~nmt.inference.loading.load_model`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from nmt.baselines.mean_vectors import MeanVectorModel
from nmt.baselines.naive_bayes import LinearTextModel
from nmt.evaluation.classification import classification_report, confusion_matrix
from nmt.inference.checkpoint import MODEL_PREFIX, PAYLOAD_KEY, make_payload
from nmt.inference.loading import BASELINE_KEY
from nmt.inference.loading import BASELINE_TASK as TASK


def evaluate_model(
    model: LinearTextModel | MeanVectorModel, rows: list[tuple[str, int]], labels: list[str]
) -> dict[str, Any]:
    """The ``nmt/cli/evaluate_classifier.py`` report of ``model`` on labelled ``rows``."""
    texts, gold = [t for t, _ in rows], torch.tensor([y for _, y in rows], dtype=torch.long)
    predicted = model.predict(texts)
    return classification_report(confusion_matrix(predicted, gold, len(labels)), labels)


def baseline_checkpoint(
    model: LinearTextModel | MeanVectorModel,
    config: Mapping[str, Any],
    labels: list[str],
    setting: Mapping[str, float],
) -> dict[str, Any]:
    """A checkpoint in the ``nmt`` format (no tokenizer: the n-gram vocabulary or word table is the model's)."""
    description, tensors = model.to_state()
    payload = make_payload(TASK, config, {})
    payload["labels"] = list(labels)
    payload[BASELINE_KEY] = {**description, "setting": dict(setting)}
    return {PAYLOAD_KEY: payload, "state_dict": {MODEL_PREFIX + k: v for k, v in tensors.items()}}
