"""Source/target pairs -> the model's log-probability of each target (forced decoding).

:class:`Scorer` wraps a :class:`~nmt.inference.translator.Translator` (its model, tokenizers,
device, precision and source limit) and scores pairs in length-sorted batches through one
teacher-forced pass each (:func:`~nmt.decoding.forced.forced_decode`); it returns exactly
one :class:`ScoredPair` per pair, in input order. Both sides are normalised like training
text; a side longer than the model's limit is truncated, with a warning naming the line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

from nmt.data.batching import collate_pairs
from nmt.data.text import normalize_text
from nmt.decoding.forced import forced_decode
from nmt.inference.translator import Translator, tag_sources


@dataclass
class ScoredPair:
    """The score of one pair.

    :ivar source, target: the normalised texts.
    :ivar log_prob: log p(target + EOS | source); None when the source is empty (there is
        nothing to condition on).
    :ivar pieces: target tokens, ending with ``<eos>``; ``token_log_probs`` scores each.
    :ivar source_pieces: the source tokens the model read.
    :ivar attention: (len(pieces), len(source_pieces)) float32 if requested, else None.
    :ivar truncated: a side was longer than the model's limit and was cut.
    """

    source: str
    target: str
    log_prob: float | None = None
    pieces: list[str] = field(default_factory=list)
    token_log_probs: list[float] = field(default_factory=list)
    source_pieces: list[str] = field(default_factory=list)
    attention: torch.Tensor | None = None
    truncated: bool = False


class Scorer:
    """Forced decoding with a translator's model."""

    def __init__(self, translator: Translator) -> None:
        self.translator = translator

    def score(
        self,
        pairs: Iterable[tuple[str, str]],
        batch_size: int = 64,
        *,
        return_attention: bool = False,
        first_line: int = 1,
        direction: str | None = None,
        to: str | None = None,
    ) -> list[ScoredPair]:
        """Score raw ``(source, target)`` pairs; one :class:`ScoredPair` per pair, in order.

        :param return_attention: keep each pair's attention (ValueError for a model without).
        :param first_line: number of the first pair's line, for warnings about truncation.
        :param direction, to: a model trained on several directions scores in this one
            (``en-fr``, or the one into ``fr``; default its first), with the source tagged
            as in training and translation.
        :raises DirectionError: a direction the model was not trained on, or any asked of a
            single-direction model.
        """
        if batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {batch_size}")
        translator = self.translator
        if return_attention and not translator.has_attention:
            raise ValueError("this model has no attention (attention=none): there is no alignment to return")
        chosen = translator.direction(direction, to)
        texts = [(normalize_text(source), normalize_text(target)) for source, target in pairs]
        model_sources = tag_sources([source for source, _ in texts], chosen)
        src_ids, src_cut = translator.encode_sources(model_sources, first_line)
        tgt_ids = translator.target_tokenizer.encode_batch([target for _, target in texts])
        # The target's limit is the source's: the model never saw longer sentences on either side.
        limit = translator.source_limit
        tgt_cut = [len(row) > limit for row in tgt_ids]
        for i, cut in enumerate(tgt_cut):
            if cut:
                translator.warn(f"line {first_line + i}: {len(tgt_ids[i])} target tokens, truncated to {limit}")
                tgt_ids[i] = tgt_ids[i][:limit]
        results = [
            ScoredPair(source, target, truncated=cut_source or cut_target)
            for (source, target), cut_source, cut_target in zip(texts, src_cut, tgt_cut)
        ]
        order = sorted((i for i in range(len(texts)) if src_ids[i]), key=lambda i: -len(src_ids[i]) - len(tgt_ids[i]))
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            batch = collate_pairs([(src_ids[i], tgt_ids[i], "") for i in chunk]).to(translator.device)
            dtype = translator.autocast_dtype
            with torch.autocast(translator.device.type, dtype=dtype, enabled=dtype is not None):
                scored = forced_decode(translator.model, batch, return_attention=return_attention)
            attention: list[torch.Tensor | None] = [*scored.attention] if scored.attention else [None] * len(chunk)
            for j, i in enumerate(chunk):
                result = results[i]
                result.log_prob = scored.scores[j]
                result.token_log_probs = scored.token_log_probs[j]
                result.pieces = translator.target_pieces(tgt_ids[i], ended=True)
                result.source_pieces = translator.source_pieces(model_sources[i], src_ids[i])
                result.attention = attention[j]
        return results
