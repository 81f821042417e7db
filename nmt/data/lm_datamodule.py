"""Plain texts -> grouped split -> tokenizer -> windows of at most ``data.max_length`` tokens,
for language models.

``data.name`` picks the corpus: ``fra`` (one side of the Tatoeba pairs, ``data.side``:
``target`` = French, ``source`` = English) or a classification corpus (``imdb``, ``sms``,
``nsmc``), whose texts are read and split exactly as for classification (labels
dropped). For ``fra`` the split groups identical texts of the modelled side (after
``fold_for_grouping``), so no dev or test sentence was trained on verbatim.

Each text becomes ``BOS text EOS``; the model predicts every token after BOS, EOS included.
A text longer than ``data.max_length`` tokens is cut into consecutive windows that each start
from a fresh state (the window's first input is the token before its first target), so no
token is lost and evaluation scores every token of the split exactly once.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from nmt.data.batching import datamodule_loader, pad_sequences
from nmt.data.corpora import read_translation_pairs
from nmt.data.download import cache_dir, resolve_dataset
from nmt.data.split import cached_grouped_split
from nmt.data.text import fold_for_grouping
from nmt.data.tokenizers import BOS_ID, EOS_ID, PAD_ID, Tokenizer, build_tokenizers

log = logging.getLogger("nmt.data")

SIDES = ("source", "target")
SPLITS = ("train", "dev", "test")


# -- reading ------------------------------------------------------------------------------------
def read_texts(data: Mapping[str, Any]) -> dict[str, list[str]]:
    """train/dev/test texts of ``data.name`` (see the module docstring)."""
    name = data["name"]
    if name == "fra":
        return _fra_texts(data)
    from nmt.data.classification_datamodule import read_corpus, split_corpus

    corpus, report = read_corpus(data)
    log.info(report.summary())
    splits = {split: [text for text, _ in rows] for split, rows in split_corpus(data, corpus).items()}
    limit = data.get("limit")
    if limit:  # a seeded random subset of each split, in the original order
        seed = int(data["split_seed"])
        for split, texts in splits.items():
            if limit < len(texts):
                splits[split] = [texts[i] for i in sorted(random.Random(seed).sample(range(len(texts)), int(limit)))]
    return splits


def _fra_texts(data: Mapping[str, Any]) -> dict[str, list[str]]:
    side = data.get("side", "target")
    if side not in SIDES:
        raise ValueError(
            f"data.side={side!r} is not supported: use data.side=target (French) or data.side=source (English)"
        )
    path = resolve_dataset("fra", data.get("path"), download=data.get("download", False))
    pairs, report = read_translation_pairs(path, strict=data.get("strict", False))
    log.info(report.summary())
    texts = [pair[SIDES.index(side)] for pair in pairs]
    if data.get("limit"):
        texts = texts[: int(data["limit"])]
    cache = data.get("split_cache", "auto")
    directory = None if cache is None else (cache_dir() / "splits" if cache == "auto" else Path(cache))
    indices = cached_grouped_split(
        [fold_for_grouping(text) for text in texts], dict(data["split"]), int(data["split_seed"]), directory
    )
    return {split: [texts[i] for i in indices.get(split, [])] for split in SPLITS}


# -- windows and batches ------------------------------------------------------------------------
def windows(ids: Sequence[int], max_length: int | None) -> list[tuple[list[int], list[int]]]:
    """``(inputs, targets)`` windows of ``BOS ids EOS``: inputs are the tokens before the
    targets, at most ``max_length`` of each; together the targets are ``ids + [EOS]``."""
    inputs, targets = [BOS_ID, *ids], [*ids, EOS_ID]
    size = max_length or len(inputs)
    return [(inputs[start : start + size], targets[start : start + size]) for start in range(0, len(inputs), size)]


@dataclass
class LanguageModelBatch:
    """:ivar inputs: (batch, len) ids, BOS (or the token before the window) first, PAD-padded.
    :ivar targets: (batch, len) the next tokens, PAD where there is none.
    :ivar characters: characters of text these targets cover (for bits per character), summed."""

    inputs: torch.Tensor
    targets: torch.Tensor
    characters: int

    def to(self, device: torch.device | str) -> LanguageModelBatch:
        return replace(self, inputs=self.inputs.to(device), targets=self.targets.to(device))

    @property
    def num_target_tokens(self) -> int:
        return int((self.targets != PAD_ID).sum())


class WindowDataset(Dataset):
    """Item ``i``: ``(inputs, targets, characters)`` of one window. ``characters`` is the
    text's length plus one (its end) on the text's first window, 0 on the others, so that a
    split's windows add up to its characters."""

    def __init__(self, texts: Sequence[str], ids: Sequence[Sequence[int]], max_length: int | None) -> None:
        self.items: list[tuple[list[int], list[int], int]] = []
        for text, text_ids in zip(texts, ids):
            for number, (inputs, targets) in enumerate(windows(text_ids, max_length)):
                self.items.append((inputs, targets, len(text) + 1 if number == 0 else 0))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[list[int], list[int], int]:
        return self.items[index]

    def lengths(self) -> list[int]:
        return [len(inputs) for inputs, _, _ in self.items]


def collate_windows(items: Sequence[tuple[list[int], list[int], int]]) -> LanguageModelBatch:
    inputs, _ = pad_sequences([item[0] for item in items])
    targets, _ = pad_sequences([item[1] for item in items])
    return LanguageModelBatch(inputs, targets, sum(item[2] for item in items))


# -- the datamodule ------------------------------------------------------------------------------
class LanguageModelDataModule(L.LightningDataModule):
    """Texts for training (shuffled length buckets), validation and test (sorted buckets).

    :param data: the ``data`` config group (name, side, split, ``max_length``, batching).
    :param tokenizer_cfg: the ``tokenizer`` config group, used when ``tokenizer`` is None.
    :param tokenizer: a tokenizer to reuse (from a checkpoint).
    """

    def __init__(
        self,
        data: Mapping[str, Any],
        tokenizer_cfg: Mapping[str, Any] | None = None,
        tokenizer: Tokenizer | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.allow_zero_length_dataloader_with_multiple_devices = True
        self.cfg = data
        self.tokenizer_cfg = tokenizer_cfg
        self.tokenizer = tokenizer
        self.seed = seed
        self.texts: dict[str, list[str]] = {}
        self.datasets: dict[str, WindowDataset] = {}
        self.train_start: tuple[int, int] | None = None  # (epoch, batches done): set on resume

    @classmethod
    def from_config(cls, cfg: Any, tokenizers: Any = None) -> LanguageModelDataModule:
        """``tokenizers``: None, ``(tokenizer,)`` or a checkpoint's ``{"text": tokenizer}``."""
        if isinstance(tokenizers, Mapping):
            tokenizer = tokenizers.get("text")
        else:
            tokenizer = tokenizers[0] if tokenizers else None
        return cls(cfg.data, cfg.get("tokenizer"), tokenizer, int(cfg.seed))

    def prepare_corpus(self) -> dict[str, list[str]]:
        """Read and split the texts (idempotent)."""
        if not self.texts:
            self.texts = read_texts(self.cfg)
            empty = [split for split in SPLITS if not self.texts.get(split)]
            if empty:
                raise ValueError(f"the {', '.join(empty)} split of data={self.cfg['name']} is empty: adjust data.split")
            log.info("split sizes: %s", {name: len(rows) for name, rows in self.texts.items()})
        return self.texts

    def build_tokenizers(self) -> tuple[Tokenizer]:
        """Train the tokenizer on the training split only, unless one was given."""
        if self.tokenizer is None:
            texts = [text for text in self.prepare_corpus()["train"] if text]
            if self.tokenizer_cfg is None:
                raise ValueError("no tokenizer given, and no tokenizer config to train one")
            self.tokenizer = build_tokenizers({**self.tokenizer_cfg, "joint": True}, texts, [])[0]
        return (self.tokenizer,)

    def dataset(self, name: str) -> WindowDataset:
        if name not in self.datasets:
            (tokenizer,) = self.build_tokenizers()
            texts = self.prepare_corpus()[name]
            self.datasets[name] = WindowDataset(texts, tokenizer.encode_batch(texts), self.cfg.get("max_length"))
        return self.datasets[name]

    def setup(self, stage: str | None = None) -> None:
        needed = {"fit": ("train", "dev"), "validate": ("dev",), "test": ("test",)}.get(stage or "", SPLITS)
        for name in needed:
            self.dataset(name)

    def loader(self, name: str, shuffle: bool = False) -> DataLoader:
        size = self.cfg["batch_size"] if shuffle else self.cfg.get("eval_batch_size") or self.cfg["batch_size"]
        return datamodule_loader(self, self.dataset(name), int(size), collate_windows, shuffle)

    def train_dataloader(self) -> DataLoader:
        return self.loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self.loader("dev")

    def test_dataloader(self) -> DataLoader:
        return self.loader("test")
