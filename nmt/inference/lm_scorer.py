"""Texts -> a language model's log-probability of each (``task=lm`` checkpoints).

:class:`TextScorer` tokenises each text with the language model's own tokenizer, after the
same normalisation as its training text (:func:`~nmt.data.text.normalize_text`), and
returns log p(ids + EOS | BOS): the sum over the text's tokens and its end, the quantity
whose mean is the model's training loss. Texts are scored in length-sorted batches through
one teacher-forced pass each; the result is in input order and does not depend on the batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from nmt.data.text import normalize_text
from nmt.data.tokenizers import BOS_ID, EOS_ID, PAD_ID, Tokenizer
from nmt.inference.loading import LoadedModel, check_task, load_model
from nmt.inference.translator import resolve_device
from nmt.models.language_model import LanguageModel

TASK = "lm"


@dataclass
class ScoredText:
    """:ivar text: the normalised text. :ivar log_prob: log p(text + EOS), natural log.
    :ivar tokens: how many tokens the model predicted (the text's, plus EOS)."""

    text: str
    log_prob: float
    tokens: int


def padded_batch(rows: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids -> ``(inputs, targets)``, each (batch, max_len + 1), PAD_ID-padded:
    inputs are ``BOS ids``, targets ``ids EOS``."""
    width = max(len(row) for row in rows) + 1
    inputs = torch.full((len(rows), width), PAD_ID, dtype=torch.long)
    targets = torch.full((len(rows), width), PAD_ID, dtype=torch.long)
    for i, row in enumerate(rows):
        inputs[i, : len(row) + 1] = torch.tensor([BOS_ID, *row], dtype=torch.long)
        targets[i, : len(row) + 1] = torch.tensor([*row, EOS_ID], dtype=torch.long)
    return inputs, targets


@torch.no_grad()
def sequence_log_probs(model: LanguageModel, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p of each row's targets, summed over its non-PAD positions.

    :param inputs: (batch, len) ids, BOS first. :param targets: (batch, len) next ids, PAD after the end.
    :return: (batch,) float32.
    """
    log_probs = torch.log_softmax(model(inputs).float(), dim=-1)
    picked = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return picked.masked_fill(targets == PAD_ID, 0.0).sum(dim=-1)


class TextScorer:
    """A trained language model with its tokenizer, ready to score texts."""

    def __init__(self, model: LanguageModel, tokenizer: Tokenizer, device: str | torch.device = "cpu") -> None:
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "auto") -> TextScorer:
        """Load a language-model checkpoint (``weights_only``).

        :raises CheckpointError: missing, unreadable or not a language-model checkpoint.
        """
        device = resolve_device(device)  # a missing GPU fails before the file is read
        return cls.from_loaded(load_model(path, task=TASK), device)

    @classmethod
    def from_loaded(cls, loaded: LoadedModel, device: str | torch.device = "auto") -> TextScorer:
        check_task(loaded.path, loaded.task, TASK)
        return cls(loaded.model, loaded.tokenizer, device)

    def score(self, texts: Iterable[str], batch_size: int = 64) -> list[ScoredText]:
        """Score raw texts; exactly one :class:`ScoredText` per text, in order."""
        if batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {batch_size}")
        normalised = [normalize_text(text) for text in texts]
        ids = self.tokenizer.encode_batch(normalised)
        results = [ScoredText(text, 0.0, len(row) + 1) for text, row in zip(normalised, ids)]
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            inputs, targets = padded_batch([ids[i] for i in chunk])
            scores = sequence_log_probs(self.model, inputs.to(self.device), targets.to(self.device))
            for i, value in zip(chunk, scores.tolist()):
                results[i].log_prob = value
        return results
