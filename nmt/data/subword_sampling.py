"""Subword regularisation: training pairs segmented anew, at random, every epoch.

Kudo (2018) trains on segmentations drawn from a unigram SentencePiece model's n best
instead of the single best one (:meth:`SentencePieceTokenizer.sample_encode`). The draw of
item ``i`` in epoch ``e`` is a function of ``(seed, e, i)`` alone, so an exact resume, a
DataLoader worker and another process all see the very ids of an uninterrupted run. For that the dataset must know the
epoch of each request: its keys are ``(epoch, index)`` pairs, which the batch sampler yields
when the dataset says ``keyed_by_epoch`` (:class:`nmt.data.batching.BucketBatchSampler`).
The sampler lives in the main process, so the epoch reaches worker processes with the keys.

Batches are still cut from the lengths of the best segmentation: every epoch keeps the same
number of batches (Lightning reads it once). A sample longer than ``max_length`` falls back
to the best segmentation, so the length filter still holds; a token budget may be exceeded
by as much as sampling lengthens the sentences of a batch.
"""

from __future__ import annotations

import hashlib

from nmt.data.batching import PairDataset
from nmt.data.tokenizers import SentencePieceTokenizer

SOURCE, TARGET = 0, 1


def sampling_seed(seed: int, epoch: int, index: int, side: int) -> int:
    """A 31-bit generator seed for one side of one item in one epoch.

    Hashed rather than added up, so that neighbouring (epoch, index) pairs do not share seeds.
    """
    digest = hashlib.blake2b(f"{seed}:{epoch}:{index}:{side}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little") >> 1


class SampledPairDataset(PairDataset):
    """Training pairs whose ids are a sampled segmentation of their texts, new each epoch.

    Item ``(epoch, i)`` is ``(src_ids, tgt_ids, target_text)`` as in :class:`PairDataset`; a
    plain int ``i`` gives the best segmentation. ``lengths()`` are those of the best one.

    :param src_texts: the source sentences; ``tgt_texts`` the target ones (also the references).
    :param src_ids: best segmentations (lengths, fallback); ``tgt_ids`` likewise.
    :param alpha: smoothing exponent: a segmentation ``x`` is drawn with probability ``P(x)^alpha``.
    :param nbest: draw among the ``nbest`` best segmentations.
    :param max_length: longest sample kept (tokens per side); longer ones use the best.
    """

    keyed_by_epoch = True

    def __init__(
        self,
        src_texts: list[str],
        tgt_texts: list[str],
        src_ids: list[list[int]],
        tgt_ids: list[list[int]],
        tokenizers: tuple[SentencePieceTokenizer, SentencePieceTokenizer],
        *,
        alpha: float,
        nbest: int,
        seed: int = 0,
        max_length: int | None = None,
    ) -> None:
        super().__init__(src_ids, tgt_ids, tgt_texts)
        if len(src_texts) != len(tgt_texts):
            raise ValueError("source and target text lists differ in length")
        self.src_texts = src_texts
        self.tokenizers = tokenizers
        self.alpha, self.nbest, self.seed, self.max_length = alpha, nbest, seed, max_length

    def _sample(self, epoch: int, index: int, side: int) -> list[int]:
        text, best = (self.src_texts, self.src_ids) if side == SOURCE else (self.tgt_texts, self.tgt_ids)
        ids = self.tokenizers[side].sample_encode(
            text[index], alpha=self.alpha, nbest=self.nbest, seed=sampling_seed(self.seed, epoch, index, side)
        )
        if self.max_length and len(ids) > self.max_length:
            return best[index]
        return ids

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[list[int], list[int], str]:
        if isinstance(key, int):
            return super().__getitem__(key)
        epoch, index = key
        return self._sample(epoch, index, SOURCE), self._sample(epoch, index, TARGET), self.tgt_texts[index]
