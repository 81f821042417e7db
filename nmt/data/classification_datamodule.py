"""Labelled texts -> seeded stratified split -> tokenizer -> truncated, length-bucketed batches.

``data.name`` picks the corpus reader (imdb, sms, nsmc). IMDB and NSMC come with an official
train/test split and the dev set is carved from train; SMS spam has none and is split three
ways. Splits keep the label proportions and, with ``data.group_duplicates``, put repeated
texts (after ``fold_for_grouping``) in one split only, so a test message cannot have been
trained on verbatim.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
from torch.utils.data import DataLoader

from nmt.data.batching import datamodule_loader
from nmt.data.classification_batching import LabelledDataset, collate_labelled, truncate
from nmt.data.corpora import ReadReport, read_imdb, read_nsmc, read_sms
from nmt.data.download import resolve_dataset
from nmt.data.split import grouped_split, stratified_split
from nmt.data.text import fold_for_grouping
from nmt.data.tokenizers import Tokenizer, build_tokenizers

log = logging.getLogger("nmt.data")

DATASET_NAMES = ("imdb", "sms", "nsmc", "reuters")
SPLITS = ("train", "dev", "test")
Labelled = list[tuple[str, int]]


# -- reading and splitting ---------------------------------------------------------------------
def read_corpus(data: Mapping[str, Any]) -> tuple[dict[str, Labelled], ReadReport]:
    """The reader's splits for ``data.name``: ``train``/``test`` (imdb, nsmc) or ``all`` (sms)."""
    name, strict, download = data["name"], bool(data.get("strict", False)), data.get("download", False)
    if name == "imdb":
        return read_imdb(resolve_dataset("imdb", data.get("path"), download=download), strict=strict)
    if name == "sms":
        return read_sms(resolve_dataset("sms", data.get("path"), download=download), strict=strict)
    if name == "nsmc":
        return read_nsmc(
            resolve_dataset("nsmc_train", data.get("path"), download=download),
            resolve_dataset("nsmc_test", data.get("test_path"), download=download),
            strict=strict,
        )
    if name == "reuters":
        return _read_reuters(data, strict, download)
    raise ValueError(f"unknown classification dataset {name!r}: use data=<name> with one of {DATASET_NAMES}")


def _read_reuters(data: Mapping[str, Any], strict: bool, download) -> tuple[dict[str, Labelled], ReadReport]:
    """``data.format``: ``keras`` (reuters.npz + word index) or ``apte`` (an ApteMod directory,
    ``data.path``); the topics found must be ``data.labels``, in order."""
    from nmt.data.readers.reuters import read_reuters_apte, read_reuters_keras

    layout = data.get("format", "keras")
    if layout == "apte":
        if not data.get("path"):
            raise ValueError("data.format=apte reads a Reuters-21578 ApteMod directory: set data.path=DIR")
        splits, report, labels = read_reuters_apte(data["path"])
    elif layout == "keras":
        npz = resolve_dataset("reuters", data.get("path"), download=download)
        index = data.get("word_index_path")
        if index is None:
            index = resolve_dataset("reuters_word_index", None, download=download)
        splits, report, labels = read_reuters_keras(npz, index, num_classes=len(data["labels"]))
    else:
        raise ValueError(f"data.format={layout!r} is not supported: use data.format=keras or data.format=apte")
    if strict and report.n_malformed:
        raise ValueError(f"data.strict=true and {report.summary()}")
    if list(data["labels"]) != labels:
        raise ValueError(
            f"data.labels must list this corpus's {len(labels)} topics in this order: data.labels=[{','.join(labels)}]"
        )
    return splits, report


def stratified_grouped_split(
    texts: Sequence[str], labels: Sequence[int], fractions: Mapping[str, float], seed: int
) -> dict[str, list[int]]:
    """Per label, a grouped split of the texts: label proportions are kept and texts of one
    label that fold to the same key (duplicates, case/punctuation variants) never straddle two
    splits. (The same text under two different labels is two groups.)"""
    by_label: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        by_label.setdefault(label, []).append(index)
    assigned: dict[str, list[int]] = {name: [] for name in fractions}
    for label in sorted(by_label):
        members = by_label[label]
        keys = [fold_for_grouping(texts[i]) for i in members]
        for name, positions in grouped_split(keys, fractions, seed + label).items():
            assigned[name].extend(members[p] for p in positions)
    return {name: sorted(indices) for name, indices in assigned.items()}


def split_corpus(data: Mapping[str, Any], corpus: dict[str, Labelled]) -> dict[str, Labelled]:
    """train/dev/test: ``data.split`` divides ``all`` (sms) or the official ``train``."""
    fractions = dict(data["split"])
    pool = corpus["all"] if "all" in corpus else corpus["train"]
    texts, labels = [t for t, _ in pool], [y for _, y in pool]
    seed = int(data["split_seed"])
    if data.get("group_duplicates", True):
        indices = stratified_grouped_split(texts, labels, fractions, seed)
    else:
        indices = stratified_split(labels, fractions, seed)
    splits = {name: [pool[i] for i in idx] for name, idx in indices.items()}
    if "test" in corpus:
        if "test" in splits:
            raise ValueError(f"data={data['name']} has an official test split: data.split takes train and dev only")
        splits["test"] = corpus["test"]
    if set(splits) != set(SPLITS):
        raise ValueError(f"data.split must produce {SPLITS}, got {sorted(splits)}")
    return splits


def _subsample(rows: Labelled, limit: int | None, seed: int) -> Labelled:
    """A seeded random subset in the original order (the files are sorted by label)."""
    if not limit or limit >= len(rows):
        return rows
    return [rows[i] for i in sorted(random.Random(seed).sample(range(len(rows)), int(limit)))]


# -- the datamodule ------------------------------------------------------------------------------
class ClassificationDataModule(L.LightningDataModule):
    """Labelled texts for training (shuffled buckets), validation and test (sorted buckets).

    :param data: the ``data`` config group (conf/data/{imdb,sms,nsmc}.yaml).
    :param tokenizer_cfg: the ``tokenizer`` config group, used when ``tokenizer`` is None.
    :param tokenizer: a tokenizer to reuse (from a checkpoint or a translation encoder).
    :param seed: shuffling seed for the training batches.
    """

    def __init__(
        self,
        data: Mapping[str, Any],
        tokenizer_cfg: Mapping[str, Any] | None = None,
        tokenizer: Tokenizer | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        # Evaluation batches are shared out over DDP ranks; a small dev set may leave a rank none.
        self.allow_zero_length_dataloader_with_multiple_devices = True
        self.cfg = data
        self.tokenizer_cfg = tokenizer_cfg
        self.tokenizer = tokenizer
        self.seed = seed
        self.splits: dict[str, Labelled] = {}
        self.report: ReadReport | None = None
        self.datasets: dict[str, LabelledDataset] = {}
        self.train_start: tuple[int, int] | None = None  # (epoch, batches done): set on resume

    @classmethod
    def from_config(cls, cfg: Any, tokenizers: Any = None) -> ClassificationDataModule:
        """Build from the whole run config. ``tokenizers``: None (one is trained on the
        training split), ``(tokenizer,)`` or a checkpoint's ``{"source": tokenizer}``."""
        if isinstance(tokenizers, Mapping):
            tokenizer = tokenizers.get("source")
        else:
            tokenizer = tokenizers[0] if tokenizers else None
        return cls(cfg.data, cfg.get("tokenizer"), tokenizer, int(cfg.seed))

    @property
    def label_names(self) -> list[str]:
        return list(self.cfg["labels"])

    def prepare_corpus(self) -> dict[str, Labelled]:
        """Read and split the corpus (idempotent)."""
        if self.splits:
            return self.splits
        corpus, self.report = read_corpus(self.cfg)
        log.info(self.report.summary())
        splits = split_corpus(self.cfg, corpus)
        limit = self.cfg.get("limit")
        self.splits = {name: _subsample(rows, limit, self.seed) for name, rows in splits.items()}
        found = {y for rows in self.splits.values() for _, y in rows}
        if found and max(found) >= len(self.label_names):
            raise ValueError(f"labels {sorted(found)} found but data.labels names only {self.label_names}")
        log.info("split sizes: %s", {name: len(rows) for name, rows in self.splits.items()})
        return self.splits

    def build_tokenizers(self) -> tuple[Tokenizer]:
        """Train the tokenizer on the training split only, unless one was given."""
        if self.tokenizer is None:
            texts = [text for text, _ in self.prepare_corpus()["train"] if text]
            # build_tokenizers trains (source, target) models; joint=True trains just one.
            if self.tokenizer_cfg is None:
                raise ValueError("no tokenizer given, and no tokenizer config to train one")
            self.tokenizer = build_tokenizers({**self.tokenizer_cfg, "joint": True}, texts, [])[0]
        return (self.tokenizer,)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, truncated to ``data.max_tokens``."""
        (tokenizer,) = self.build_tokenizers()
        cfg = self.cfg
        return [
            truncate(ids, cfg.get("max_tokens"), cfg.get("truncation", "head"), cfg.get("head_tokens"))
            for ids in tokenizer.encode_batch(list(texts))
        ]

    def dataset(self, name: str) -> LabelledDataset:
        if name not in self.datasets:
            rows = self.prepare_corpus()[name]
            self.datasets[name] = LabelledDataset(self.encode([t for t, _ in rows]), [y for _, y in rows])
        return self.datasets[name]

    def setup(self, stage: str | None = None) -> None:
        needed = {"fit": ("train", "dev"), "validate": ("dev",), "test": ("test",)}.get(stage or "", SPLITS)
        for name in needed:
            self.dataset(name)

    # -- loaders -----------------------------------------------------------------------------
    def loader(self, name: str, shuffle: bool = False) -> DataLoader:
        size = self.cfg["batch_size"] if shuffle else self.cfg.get("eval_batch_size") or self.cfg["batch_size"]
        return datamodule_loader(self, self.dataset(name), int(size), collate_labelled, shuffle)

    def train_dataloader(self) -> DataLoader:
        return self.loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self.loader("dev")

    def test_dataloader(self) -> DataLoader:
        return self.loader("test")
