"""Truncated, padded batches of labelled texts (no Lightning here: the CLI imports it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch.utils.data import Dataset

from nmt.config.schema import Truncation, choices
from nmt.data.batching import pad_sequences
from nmt.data.tokenizers import PAD_ID

TRUNCATION_MODES = choices(Truncation)
T = TypeVar("T")


def truncate(
    tokens: Sequence[T], max_tokens: int | None, mode: str = "head", head_tokens: int | None = None
) -> list[T]:
    """Keep at most ``max_tokens`` tokens of a long text.

    ``head``: the first ``max_tokens``. ``head_tail``: the first ``head_tokens`` (default a
    quarter of the budget) and the last ``max_tokens - head_tokens``; reviews often state
    their verdict at the end (Sun et al. 2019, "How to Fine-Tune BERT for Text Classification").
    """
    if mode not in TRUNCATION_MODES:
        raise ValueError(f"unknown truncation {mode!r}: use data.truncation=head or head_tail")
    tokens = list(tokens)
    if not max_tokens or len(tokens) <= max_tokens:
        return tokens
    if mode == "head":
        return tokens[:max_tokens]
    head = max_tokens // 4 if head_tokens is None else min(int(head_tokens), max_tokens)
    return tokens[:head] + tokens[len(tokens) - (max_tokens - head) :]


@dataclass
class ClassificationBatch:
    """:ivar src: (batch, len) ids. :ivar src_lengths: (batch,), >= 1. :ivar labels: (batch,)."""

    src: torch.Tensor
    src_lengths: torch.Tensor
    labels: torch.Tensor


class LabelledDataset(Dataset):
    """Encoded texts; item ``i`` is ``(ids, label)``."""

    def __init__(self, ids: list[list[int]], labels: list[int]) -> None:
        if len(ids) != len(labels):
            raise ValueError("id and label lists differ in length")
        self.ids, self.labels = ids, labels

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[list[int], int]:
        return self.ids[index], self.labels[index]

    def lengths(self) -> list[int]:
        return [max(1, len(ids)) for ids in self.ids]


def collate_labelled(items: Sequence[tuple[list[int], int]]) -> ClassificationBatch:
    """Pad a list of items; an empty text becomes one PAD token of length 1."""
    src, lengths = pad_sequences([ids or [PAD_ID] for ids, _ in items])
    return ClassificationBatch(src, lengths.clamp(min=1), torch.tensor([y for _, y in items], dtype=torch.long))
