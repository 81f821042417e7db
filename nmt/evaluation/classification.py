"""Classification metrics from a confusion matrix: accuracy, macro-F1, per-class P/R/F1."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def confusion_matrix(predictions: torch.Tensor, targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """:return: (num_classes, num_classes) int64 counts, rows = true class, columns = predicted."""
    index = targets.long().flatten() * num_classes + predictions.long().flatten()
    return torch.bincount(index, minlength=num_classes * num_classes).view(num_classes, num_classes)


def per_class_scores(confusion: torch.Tensor) -> list[dict[str, float]]:
    """Precision, recall, F1 and support of each class; 0 where undefined (no predictions)."""
    confusion = confusion.double()
    true_positive = confusion.diag()
    predicted = confusion.sum(dim=0)
    actual = confusion.sum(dim=1)
    scores = []
    for k in range(confusion.size(0)):
        precision = float(true_positive[k] / predicted[k]) if predicted[k] else 0.0
        recall = float(true_positive[k] / actual[k]) if actual[k] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores.append({"precision": precision, "recall": recall, "f1": f1, "support": int(actual[k])})
    return scores


def accuracy(confusion: torch.Tensor) -> float:
    total = int(confusion.sum())
    return float(confusion.diag().sum()) / total if total else 0.0


def macro_f1(confusion: torch.Tensor) -> float:
    scores = per_class_scores(confusion)
    return sum(s["f1"] for s in scores) / len(scores)


def averages(confusion: torch.Tensor) -> dict[str, float]:
    """Macro (mean over classes) and micro (pooled counts) precision, recall and F1. With one
    label per text every error is one false positive and one false negative, so the micro
    figures all equal the accuracy; they are given for comparison with multi-label reports."""
    scores = per_class_scores(confusion)
    total = int(confusion.sum())
    correct = float(confusion.diag().sum())
    micro = correct / total if total else 0.0
    return {
        "macro_precision": sum(s["precision"] for s in scores) / len(scores),
        "macro_recall": sum(s["recall"] for s in scores) / len(scores),
        "micro_precision": micro,
        "micro_recall": micro,
        "micro_f1": micro,
    }


def classification_report(confusion: torch.Tensor, labels: Sequence[str]) -> dict:
    """A JSON-ready summary: accuracy, macro-F1, macro and micro averages, per-class scores
    and the confusion matrix."""
    return {
        "n": int(confusion.sum()),
        "accuracy": accuracy(confusion),
        "macro_f1": macro_f1(confusion),
        **averages(confusion),
        "per_class": dict(zip(labels, per_class_scores(confusion))),
        "labels": list(labels),
        "confusion_matrix": confusion.tolist(),
        "confusion_matrix_axes": "rows = true label, columns = predicted label",
    }
