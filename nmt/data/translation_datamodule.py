"""Corpus -> grouped split -> tokenizers -> length-bucketed batches, for translation."""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
from torch.utils.data import DataLoader

from nmt.data.batching import PairDataset, collate_pairs, datamodule_loader
from nmt.data.corpora import ReadReport, read_translation_pairs
from nmt.data.directions import ENGLISH, Direction, parse_directions, tag_for, tagged_source
from nmt.data.download import cache_dir, resolve_pairs
from nmt.data.split import cached_grouped_split
from nmt.data.subword_sampling import SampledPairDataset
from nmt.data.text import fold_for_grouping
from nmt.data.tokenizers import SentencePieceTokenizer, TaggedTokenizer, Tokenizer, build_tokenizers

log = logging.getLogger("nmt.data")

SPLIT_NAMES = ("train", "dev", "test")


class TranslationDataModule(L.LightningDataModule):
    """Sentence pairs for training, validation (loss + BLEU subset) and test.

    :param data: the ``data`` config group (path, split, length limit, batching).
    :param tokenizer: the ``tokenizer`` config group, used when ``tokenizers`` is None.
    :param tokenizers: (source, target) tokenizers to reuse, e.g. from a checkpoint.
    :param seed: shuffling seed for the training batches.
    """

    def __init__(
        self,
        data: Mapping[str, Any],
        tokenizer: Mapping[str, Any] | None = None,
        tokenizers: tuple[Tokenizer, Tokenizer] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        # Evaluation batches are shared out over DDP ranks; a small dev set may leave a rank none.
        self.allow_zero_length_dataloader_with_multiple_devices = True
        self.cfg = data
        self.tokenizer_cfg = tokenizer
        self.tokenizers = tokenizers
        self.seed = seed
        self.splits: dict[str, list[tuple[str, str]]] = {}
        self.report: ReadReport | None = None
        self.datasets: dict[str, PairDataset] = {}
        self.num_filtered = 0
        self.train_start: tuple[int, int] | None = None  # (epoch, batches done): set on resume

    # -- corpus and tokenizers -------------------------------------------------------------
    def corpus_path(self) -> Path:
        language = self.cfg.get("language") or "fra"
        return resolve_pairs(language, self.cfg.get("path"), download=self.cfg.get("download", False))

    @property
    def directions(self) -> list[Direction] | None:
        """The directions of a several-direction model (``data.directions``), else None."""
        names = self.cfg.get("directions")
        if names is None:
            return None
        if self.cfg.get("reverse"):
            raise ValueError("data.reverse=true and data.directions both set: list the directions you want instead")
        return parse_directions(names, self.cfg.get("language") or "fra")

    def direction_pairs(self, name: str) -> dict[Direction, list[tuple[str, str]]]:
        """Split ``name``'s pairs in each of :attr:`directions`, untagged (sources first)."""
        rows = self.prepare_corpus()[name]
        directions = self.directions
        if directions is None:
            raise ValueError("direction_pairs needs data.directions")
        return {d: rows if d.source == ENGLISH else [(t, s) for s, t in rows] for d in directions}

    def _model_rows(self, name: str) -> list[tuple[str, str]]:
        """The (source, target) rows the model sees: with several directions, every pair once
        per direction, its source tagged with the target language."""
        if self.directions is None:
            return self.prepare_corpus()[name]
        return [
            (tagged_source(source, direction.target), target)
            for direction, rows in self.direction_pairs(name).items()
            for source, target in rows
        ]

    def split_cache_dir(self) -> Path | None:
        cache = self.cfg.get("split_cache", "auto")
        if cache is None:
            return None
        return cache_dir() / "splits" if cache == "auto" else Path(cache)

    def split_files(self) -> dict[str, Path]:
        """The splits given as files (``data.train``, ``data.dev``, ``data.test``)."""
        files = {name: self.cfg.get(name) for name in SPLIT_NAMES}
        return {name: Path(path).expanduser() for name, path in files.items() if path}

    def _read_pairs(self, path: Path, what: str) -> list[tuple[str, str]]:
        if not path.exists():
            raise FileNotFoundError(f"{what}={path} does not exist: fix the path, or drop {what} to split data.path")
        pairs, report = read_translation_pairs(path, strict=self.cfg.get("strict", False))
        log.info("%s: %s", what, report.summary())
        if self.report is None:
            self.report = report
        if not pairs:
            raise ValueError(f"no usable sentence pairs in {what}={path}")
        return pairs

    def prepare_corpus(self) -> dict[str, list[tuple[str, str]]]:
        """Read, normalise and split the corpus (idempotent).

        Splits named by a file (``data.train`` / ``data.dev`` / ``data.test``) are read from
        it as they are; the others come from a grouped split of the training pairs
        (``data.train``, else the corpus at ``data.path``) with the ``data.split`` fractions,
        the fractions of the given splits going to train.
        """
        if self.splits:
            return self.splits
        files = self.split_files()
        if "train" in files:
            pairs = self._read_pairs(files["train"], "data.train")
        else:
            pairs = self._read_pairs(self.corpus_path(), "data.path")
        if self.cfg.get("limit"):
            pairs = pairs[: int(self.cfg["limit"])]
        fractions = {name: float(value) for name, value in dict(self.cfg["split"]).items()}
        for name in files.keys() - {"train"}:
            fractions["train"] = fractions.get("train", 0.0) + fractions.pop(name, 0.0)
        if fractions.get("train", 0.0) >= 1.0 - 1e-9:
            indices = {"train": list(range(len(pairs)))}
        else:
            indices = cached_grouped_split(
                [fold_for_grouping(src) for src, _ in pairs],
                fractions,
                int(self.cfg["split_seed"]),
                self.split_cache_dir(),
            )
        self.splits = {name: [pairs[i] for i in idx] for name, idx in indices.items()}
        for name in files.keys() - {"train"}:
            self.splits[name] = self._read_pairs(files[name], f"data.{name}")
            self._warn_overlap(name)
        for name in SPLIT_NAMES:
            self.splits.setdefault(name, [])
        if self.cfg.get("reverse"):
            # After the split, so that both directions hold out the same pairs.
            self.splits = {name: [(t, s) for s, t in rows] for name, rows in self.splits.items()}
        log.info("split sizes: %s", {name: len(rows) for name, rows in self.splits.items()})
        return self.splits

    def _warn_overlap(self, name: str) -> None:
        """Given dev/test files are not checked against train by the grouped split: say so if they overlap."""
        seen = {fold_for_grouping(src) for src, _ in self.splits["train"]}
        shared = sum(fold_for_grouping(src) in seen for src, _ in self.splits[name])
        if shared:
            log.warning(
                "%d of %d %s sources (case and punctuation folded) are also training sources: "
                "%s scores will reward memorisation",
                shared,
                len(self.splits[name]),
                name,
                name,
            )

    def build_tokenizers(self) -> tuple[Tokenizer, Tokenizer]:
        """Train tokenizers on the training split only, unless they were given."""
        if self.tokenizers is None:
            train = self.prepare_corpus()["train"]
            if self.tokenizer_cfg is None:
                raise ValueError("no tokenizer given, and no tokenizer config to train one")
            directions = self.directions
            if directions is None:
                self.tokenizers = build_tokenizers(self.tokenizer_cfg, [s for s, _ in train], [t for _, t in train])
            else:
                # Each side reads and writes both languages.
                both = [s for s, _ in train] + [t for _, t in train]
                source, target = build_tokenizers(self.tokenizer_cfg, both, both)
                tags = [tag_for(language) for language in dict.fromkeys(d.target for d in directions)]
                self.tokenizers = (TaggedTokenizer(source, tags), target)
                log.info(
                    "directions %s: source tags %s (ids %s)",
                    ", ".join(map(str, directions)),
                    ", ".join(tags),
                    ", ".join(str(self.tokenizers[0].tag_id(tag)) for tag in tags),
                )
        return self.tokenizers

    # -- datasets ----------------------------------------------------------------------------
    def encode_split(self, name: str, max_length: int | None) -> PairDataset:
        source_tok, target_tok = self.build_tokenizers()
        rows = self._model_rows(name)
        src_ids = source_tok.encode_batch([s for s, _ in rows])
        tgt_ids = target_tok.encode_batch([t for _, t in rows])
        keep: Sequence[int] = range(len(rows))
        if max_length:
            keep = [i for i in keep if 0 < len(src_ids[i]) <= max_length and len(tgt_ids[i]) <= max_length]
        if name == "train":
            self.num_filtered = len(rows) - len(keep)
            if self.num_filtered:
                log.info("dropped %d training pairs longer than %d tokens", self.num_filtered, max_length)
            alpha = (self.tokenizer_cfg or {}).get("sampling_alpha")
            if alpha is not None:
                return self._sampled([rows[i] for i in keep], [src_ids[i] for i in keep], [tgt_ids[i] for i in keep])
        return PairDataset([src_ids[i] for i in keep], [tgt_ids[i] for i in keep], [rows[i][1] for i in keep])

    def _sampled(
        self, rows: list[tuple[str, str]], src_ids: list[list[int]], tgt_ids: list[list[int]]
    ) -> SampledPairDataset:
        """The training pairs with subword regularisation (``tokenizer.sampling_alpha``)."""
        source_tok, target_tok = self.build_tokenizers()
        if self.directions is not None:
            raise ValueError("tokenizer.sampling_alpha does not work with data.directions yet: set one of them to null")
        if not (isinstance(source_tok, SentencePieceTokenizer) and isinstance(target_tok, SentencePieceTokenizer)):
            raise ValueError("tokenizer.sampling_alpha needs SentencePiece tokenizers: use tokenizer=spm")
        cfg = self.tokenizer_cfg or {}
        return SampledPairDataset(
            [s for s, _ in rows],
            [t for _, t in rows],
            src_ids,
            tgt_ids,
            (source_tok, target_tok),
            alpha=float(cfg["sampling_alpha"]),
            nbest=int(cfg["sampling_nbest"]),
            seed=self.seed,
            max_length=self.cfg.get("max_length"),
        )

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        max_length = self.cfg.get("max_length")
        self.datasets["train"] = self.encode_split("train", max_length)
        # Evaluation keeps every pair: dropping long ones would flatter the scores.
        self.datasets["dev"] = self.encode_split("dev", None)
        self.datasets["test"] = self.encode_split("test", None)
        self.datasets["dev_bleu"] = self._subset(self.datasets["dev"], self.cfg.get("bleu_sentences"))

    def _subset(self, dataset: PairDataset, size: int | None) -> PairDataset:
        """A seeded random subset: BLEU on the first sentences would see only short ones."""
        if not size or size >= len(dataset):
            return dataset
        chosen = sorted(random.Random(self.seed).sample(range(len(dataset)), size))
        return PairDataset(
            [dataset.src_ids[i] for i in chosen],
            [dataset.tgt_ids[i] for i in chosen],
            [dataset.tgt_texts[i] for i in chosen],
        )

    # -- loaders -----------------------------------------------------------------------------
    def _loader(self, dataset: PairDataset, batch_size: int, shuffle: bool = False) -> DataLoader:
        return datamodule_loader(self, dataset, batch_size, collate_pairs, shuffle)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.datasets["train"], int(self.cfg["batch_size"]), shuffle=True)

    def val_dataloader(self) -> list[DataLoader]:
        """Two loaders: the whole dev split (loss) and a random subset (greedy BLEU)."""
        size = int(self.cfg.get("eval_batch_size", self.cfg["batch_size"]))
        return [
            self._loader(self.datasets["dev"], size, shuffle=False),
            self._loader(self.datasets["dev_bleu"], size, shuffle=False),
        ]

    def test_dataloader(self) -> list[DataLoader]:
        size = int(self.cfg.get("eval_batch_size", self.cfg["batch_size"]))
        test = self._loader(self.datasets["test"], size, shuffle=False)
        return [test, test]
