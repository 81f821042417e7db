"""Padding, batches and length-bucketed batch sampling."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from nmt.config.schema import BatchUnit, choices
from nmt.data.tokenizers import BOS_ID, EOS_ID, PAD_ID

BATCH_UNITS = choices(BatchUnit)

log = logging.getLogger("nmt.data")


def pad_sequences(sequences: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """:return: ids (batch, max_len) padded with PAD_ID, and lengths (batch,)."""
    lengths = torch.tensor([len(seq) for seq in sequences], dtype=torch.long)
    width = max((len(seq) for seq in sequences), default=1) or 1
    padded = torch.full((len(sequences), width), PAD_ID, dtype=torch.long)
    for row, seq in enumerate(sequences):
        padded[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
    return padded, lengths


@dataclass
class TranslationBatch:
    """A padded batch of sentence pairs.

    :ivar src: (batch, src_len) source ids. :ivar src_lengths: (batch,).
    :ivar tgt_in: (batch, tgt_len + 1) BOS + target ids (decoder input).
    :ivar tgt_out: (batch, tgt_len + 1) target ids + EOS (what the decoder must predict).
    :ivar references: the raw target sentences (for BLEU), in batch order.
    """

    src: torch.Tensor
    src_lengths: torch.Tensor
    tgt_in: torch.Tensor
    tgt_out: torch.Tensor
    references: list[str]

    def to(self, device: torch.device | str) -> TranslationBatch:
        tensors = ("src", "src_lengths", "tgt_in", "tgt_out")
        return replace(self, **{name: getattr(self, name).to(device) for name in tensors})

    @property
    def num_target_tokens(self) -> int:
        return int((self.tgt_out != PAD_ID).sum())


class PairDataset(Dataset):
    """Encoded sentence pairs; item ``i`` is ``(src_ids, tgt_ids, target_text)``."""

    def __init__(self, src_ids: list[list[int]], tgt_ids: list[list[int]], tgt_texts: list[str]) -> None:
        if not len(src_ids) == len(tgt_ids) == len(tgt_texts):
            raise ValueError("source, target and text lists differ in length")
        self.src_ids, self.tgt_ids, self.tgt_texts = src_ids, tgt_ids, tgt_texts

    def __len__(self) -> int:
        return len(self.src_ids)

    def __getitem__(self, index: int) -> tuple[list[int], list[int], str]:
        return self.src_ids[index], self.tgt_ids[index], self.tgt_texts[index]

    def lengths(self) -> list[int]:
        """Per pair, the longer side plus one (BOS/EOS): what a pair costs in a batch."""
        return [max(len(s), len(t)) + 1 for s, t in zip(self.src_ids, self.tgt_ids)]


def collate_pairs(items: Sequence[tuple[list[int], list[int], str]]) -> TranslationBatch:
    """Pad a list of :class:`PairDataset` items into a :class:`TranslationBatch`."""
    src, src_lengths = pad_sequences([item[0] or [PAD_ID] for item in items])
    src_lengths = src_lengths.clamp(min=1)
    tgt_in, _ = pad_sequences([[BOS_ID, *item[1]] for item in items])
    tgt_out, _ = pad_sequences([[*item[1], EOS_ID] for item in items])
    return TranslationBatch(src, src_lengths, tgt_in, tgt_out, [item[2] for item in items])


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of similar length, so that padding stays small.

    Training order (``shuffle=True``), a new one every epoch, seeded by ``seed + epoch``:

    * ``unit="sentences"``: shuffle the items, sort them by length inside pools of
      ``pool_batches`` batches, cut batches of ``batch_size`` sentences, shuffle the batches.
    * ``unit="tokens"``: sort all items by length, ties broken at random, and cut batches
      of at most ``batch_size`` tokens (``max_len * n_sentences``), then shuffle the batches.
      Cutting the globally sorted order gives every epoch the same number of batches (only
      their members change), so the length Lightning reads once holds for every epoch and
      no batch is ever lost or repeated.

    Evaluation order (``shuffle=False``): sorted by length, deterministic.

    Under DDP, in training each replica takes every ``num_replicas``-th batch, and the
    batches beyond a multiple of ``num_replicas`` are left out so that every replica takes
    the same number of steps; in evaluation each replica takes every ``num_replicas``-th
    item of the sorted order and nothing is left out.

    The sampler counts epochs itself (each pass is the next epoch); :meth:`set_position`
    makes the next pass continue a given epoch after its first ``batches`` batches (resume).
    With ``keyed_by_epoch`` its batches hold ``(epoch, index)`` keys instead of indices, for a
    dataset whose items change with the epoch (:mod:`nmt.data.subword_sampling`).
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        *,
        unit: str = "sentences",
        shuffle: bool = True,
        seed: int = 0,
        pool_batches: int = 100,
        num_replicas: int = 1,
        rank: int = 0,
        keyed_by_epoch: bool = False,
    ) -> None:
        if unit not in BATCH_UNITS:
            raise ValueError(f"unknown batch unit {unit!r}: use data.batch_unit=sentences or tokens")
        if batch_size < 1:
            raise ValueError(f"batch size must be positive, got {batch_size}")
        if not shuffle and num_replicas > 1 and len(lengths) < num_replicas:
            raise ValueError(
                f"an evaluation split of {len(lengths)} items cannot be shared by {num_replicas} "
                "processes: use fewer trainer.devices or a larger dev/test split"
            )
        if unit == "tokens" and lengths and batch_size < max(lengths):
            raise ValueError(
                f"a token budget of {batch_size} cannot hold the longest item ({max(lengths)} "
                "tokens): raise data.batch_size or lower data.max_length"
            )
        self.lengths = list(lengths)
        self.batch_size, self.unit, self.shuffle, self.seed = batch_size, unit, shuffle, seed
        self.pool_batches = pool_batches
        self.num_replicas, self.rank = num_replicas, rank
        self.keyed_by_epoch = keyed_by_epoch
        self.epoch = 0
        self.pass_epoch: int | None = None
        self._skip = 0
        self._cache: tuple[int, list[list[int]]] | None = None

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass epoch number ``epoch`` (passes count up by themselves)."""
        self.epoch = epoch

    def skip(self, num_batches: int) -> None:
        """Leave out the first ``num_batches`` batches of the next pass (mid-epoch resume)."""
        self._skip = num_batches

    def set_position(self, epoch: int, batches_done: int) -> None:
        """Continue epoch ``epoch`` after its first ``batches_done`` batches; an epoch
        already finished moves on to the next one."""
        self.set_epoch(epoch)
        if batches_done >= len(self._epoch_batches()):
            self.set_epoch(epoch + 1)
            batches_done = 0
        self.skip(batches_done)

    def _cut(self, ordered: list[int]) -> list[list[int]]:
        batches: list[list[int]] = []
        current: list[int] = []
        longest = 0
        for index in ordered:
            length = self.lengths[index]
            if self.unit == "sentences":
                full = len(current) >= self.batch_size
            else:
                full = bool(current) and max(longest, length) * (len(current) + 1) > self.batch_size
            if full:
                batches.append(current)
                current, longest = [], 0
            current.append(index)
            longest = max(longest, length)
        if current:
            batches.append(current)
        return batches

    def _epoch_batches(self) -> list[list[int]]:
        if self._cache is not None and self._cache[0] == self.epoch:
            return self._cache[1]
        indices = list(range(len(self.lengths)))
        if not self.shuffle:
            ordered = sorted(indices, key=lambda i: (self.lengths[i], i))
            # Items, not batches, are dealt out: every replica gets a share as long as there
            # are at least as many items as replicas (a replica without a batch would skip
            # the evaluation and leave the others waiting in its reduction).
            batches = self._cut(ordered[self.rank :: self.num_replicas])
        else:
            rng = random.Random(self.seed + self.epoch)
            rng.shuffle(indices)
            if self.unit == "tokens":
                # A stable sort of a shuffled list: sorted by length, ties in random order.
                batches = self._cut(sorted(indices, key=lambda i: self.lengths[i]))
            else:
                pool = self.pool_batches * self.batch_size
                batches = []
                for start in range(0, len(indices), pool):
                    chunk = sorted(indices[start : start + pool], key=lambda i: self.lengths[i])
                    batches.extend(self._cut(chunk))
            rng.shuffle(batches)
        if self.num_replicas > 1 and self.shuffle:
            usable = len(batches) - len(batches) % self.num_replicas
            batches = batches[self.rank : usable : self.num_replicas]
        self._cache = (self.epoch, batches)
        return batches

    def __iter__(self) -> Iterator[list[Any]]:
        epoch, skip = self.epoch, self._skip
        self.pass_epoch = epoch
        return self._serve(epoch, self._epoch_batches()[skip:])

    def _serve(self, epoch: int, batches: list[list[int]]) -> Iterator[list[Any]]:
        """Yield one pass's batches; the pass counts once its first batch is asked for.

        A DataLoader with workers calls ``iter()`` twice when it starts them and drops the
        first iterator unread: counting the epoch (and using up a resume's skip) in
        ``__iter__`` itself would make the pass it serves the next epoch's.
        """
        self._skip = 0
        if self.shuffle:
            # Each pass is a new epoch. Counting here, rather than waiting for set_epoch,
            # matters: Lightning only calls set_epoch on a batch sampler's inner sampler.
            self.epoch = epoch + 1
        for batch in batches:
            yield [(epoch, index) for index in batch] if self.keyed_by_epoch else batch

    def __len__(self) -> int:
        """Batches in the next pass, before any :meth:`skip`; the same for every epoch."""
        return len(self._epoch_batches())


def bucketed_loader(
    dataset: Any,  # a map-style Dataset with lengths(), which torch's Dataset type cannot say
    batch_size: int,
    collate_fn: Callable,
    *,
    unit: str = "sentences",
    shuffle: bool = False,
    seed: int = 0,
    num_replicas: int = 1,
    rank: int = 0,
    start: tuple[int, int] | None = None,
    num_workers: int = 0,
) -> DataLoader:
    """A DataLoader over length buckets of ``dataset`` (which has ``lengths()``).

    :param num_replicas: DDP world size; this loader yields rank ``rank``'s share of batches.
    :param start: ``(epoch, batches_done)`` to continue an interrupted training epoch.

    A dataset with a true ``keyed_by_epoch`` attribute is asked for ``(epoch, index)`` keys.

    The loader has its own random generator: making its iterator draws nothing from torch's
    global one, whose state must depend only on the training steps for an exact resume.
    """
    sampler = BucketBatchSampler(
        dataset.lengths(),
        batch_size,
        unit=unit,
        shuffle=shuffle,
        seed=seed,
        num_replicas=num_replicas,
        rank=rank,
        keyed_by_epoch=getattr(dataset, "keyed_by_epoch", False),
    )
    if start is not None:
        epoch, done = start
        sampler.set_position(epoch, done)
        if done:
            log.info("resuming epoch %d after the %d batches already trained on", epoch, done)
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate_fn,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        generator=torch.Generator().manual_seed(seed),
    )


def datamodule_loader(
    datamodule: Any, dataset: Dataset, batch_size: int, collate_fn: Callable, shuffle: bool = False
) -> DataLoader:
    """:func:`bucketed_loader` as a datamodule's loaders need it: batching, seed and workers
    from its ``cfg`` (the ``data`` group), this DDP rank's share from its trainer, and for the
    training loader (``shuffle``) the position a resumed run continues from (``train_start``).
    """
    trainer = datamodule.trainer
    return bucketed_loader(
        dataset,
        batch_size,
        collate_fn,
        unit=datamodule.cfg.get("batch_unit", "sentences"),
        shuffle=shuffle,
        seed=datamodule.seed,
        num_replicas=trainer.world_size if trainer else 1,
        rank=trainer.global_rank if trainer else 0,
        start=datamodule.train_start if shuffle else None,
        num_workers=int(datamodule.cfg.get("num_workers", 0)),
    )
