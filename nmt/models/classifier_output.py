"""What every classifier returns, and the probabilities and classes read from it."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ClassifierOutput:
    """:ivar logits: (batch, 1) for two classes (the positive class's logit), else
    (batch, num_classes). :ivar attention: (batch, len) pooling weights, float32; None for
    a model without attention (``ConvLSTMClassifier``)."""

    logits: torch.Tensor
    attention: torch.Tensor | None


def class_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """(batch, num_classes) probabilities from :attr:`ClassifierOutput.logits`, in float32.
    A single logit (binary) gives ``[1 - sigmoid, sigmoid]``."""
    logits = logits.float()
    if logits.size(-1) == 1:
        positive = torch.sigmoid(logits)
        return torch.cat([1 - positive, positive], dim=-1)
    return torch.softmax(logits, dim=-1)


def predicted_classes(logits: torch.Tensor) -> torch.Tensor:
    """(batch,) the most probable class of each row of :attr:`ClassifierOutput.logits`."""
    if logits.size(-1) == 1:
        return (logits.squeeze(-1) > 0).long()
    return logits.argmax(dim=-1)
