"""Batched ancestral sampling with temperature, top-k and top-p (nucleus) filtering.

Reproducible and batch-independent: the random number behind each draw is a hash of
``(seed, source token ids, sample number, step)`` computed with integer tensor ops (a
counter-based generator), not the next value of a shared stream. A sentence therefore gets
the same samples whatever batch it is decoded in, whatever the batch size or sort order, and
on CPU or GPU alike. Each draw uses inverse-CDF sampling on
:func:`sampling_probabilities`: the temperature is applied first, then top-k / top-p keep
the most probable tokens *of the tempered distribution* (the order of Hugging Face
transformers, fairseq and llama.cpp), so a high temperature widens the nucleus and a low one
narrows it.

A temperature of at most :data:`GREEDY_TEMPERATURE` is greedy search, exactly.
"""

from __future__ import annotations

import torch

from nmt.decoding.greedy import Hypothesis, decode_one_token_per_row
from nmt.decoding.penalties import RepetitionRules

GREEDY_TEMPERATURE = 1e-5
"""Temperatures at or below this pick the argmax (dividing by ~0 would overflow)."""

_MASK32 = 0xFFFFFFFF
_GOLDEN = 0x9E3779B9


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash (xorshift-multiply rounds) of int64 tensors holding values in
    [0, 2^32). The multipliers are below 2^31, so no product overflows int64."""
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _MASK32
    x = x ^ (x >> 15)
    x = (x * 0x31848BAB) & _MASK32
    return x ^ (x >> 16)


def sentence_keys(src: torch.Tensor, src_lengths: torch.Tensor, seed: int) -> torch.Tensor:
    """A 32-bit key per sentence from its seed and real source ids, (batch,) int64."""
    lengths = src_lengths.to(src.device)
    key = _mix32(torch.full_like(lengths, seed & _MASK32) ^ _mix32(lengths & _MASK32))
    for position in range(src.size(1)):
        mixed = _mix32(((key + _GOLDEN) & _MASK32) ^ (src[:, position] & _MASK32))
        key = torch.where(position < lengths, mixed, key)
    return key


def sample_keys(
    src: torch.Tensor, src_lengths: torch.Tensor, seed: int, num_samples: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows for ``num_samples`` samples of every sentence, and a key per row.

    :param src: (batch, len) ids. :param src_lengths: (batch,).
    :return: ``rows`` (batch * num_samples,), the sentence of each row (sentence-major), and
        their int64 32-bit keys, a hash of the seed, the sentence and the sample number.
    """
    batch = src.size(0)
    rows = torch.arange(batch, device=src.device).repeat_interleave(num_samples)
    sample_number = torch.arange(num_samples, device=src.device).repeat(batch)
    return rows, _mix32(sentence_keys(src, src_lengths, seed)[rows] ^ _mix32(sample_number + 1))


def uniforms(keys: torch.Tensor, step: int) -> torch.Tensor:
    """One uniform number in [0, 1) per key for decoder step ``step``, float64."""
    step_key = _mix32(torch.tensor((step * _GOLDEN + 1) & _MASK32, device=keys.device))
    return _mix32(_mix32(keys ^ step_key)).double() / 2.0**32


def filter_log_probs(log_probs: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Keep the ``top_k`` most probable tokens and the smallest set whose probability
    reaches ``top_p``; the others get -inf. 0 / 1.0 disable a filter.

    :param log_probs: (rows, vocab). :return: a filtered copy, (rows, vocab).
    """
    if top_k and top_k < log_probs.size(-1):
        kth = log_probs.topk(top_k, dim=-1).values[:, -1:]
        log_probs = log_probs.masked_fill(log_probs < kth, float("-inf"))
    if top_p < 1.0:
        sorted_lp, order = log_probs.sort(dim=-1, descending=True)
        probs = sorted_lp.softmax(dim=-1)
        # A token goes when the more probable ones already reach top_p; the first always stays.
        drop_sorted = (probs.cumsum(dim=-1) - probs) >= top_p
        drop = drop_sorted.scatter(1, order, drop_sorted)
        log_probs = log_probs.masked_fill(drop, float("-inf"))
    return log_probs


def sampling_probabilities(
    log_probs: torch.Tensor, temperature: float, top_k: int = 0, top_p: float = 1.0
) -> torch.Tensor:
    """The distribution a token is drawn from, float64 (rows, vocab): ``softmax(log_probs / T)``
    first, then :func:`filter_log_probs` on that tempered distribution, renormalised.

    :param log_probs: (rows, vocab) next-token log-probabilities (-inf for excluded tokens).
    :param temperature: > 0 (greedy search handles the limit T -> 0).
    """
    tempered = torch.log_softmax(log_probs.double() / temperature, dim=-1)
    return torch.softmax(filter_log_probs(tempered, top_k, top_p), dim=-1)


class Sampler:
    """A token chooser (for :func:`decode_one_token_per_row` and language-model generation):
    an inverse-CDF draw from :func:`sampling_probabilities`, with the counter-based uniform of
    each row's key (:func:`uniforms`) at each step.

    :param keys: (rows,) int64 32-bit key of every row of the full batch.
    """

    def __init__(self, keys: torch.Tensor, temperature: float, top_k: int, top_p: float) -> None:
        self.keys, self.temperature, self.top_k, self.top_p = keys, temperature, top_k, top_p

    def __call__(self, log_probs: torch.Tensor, rows: torch.Tensor, step: int) -> torch.Tensor:
        """:param log_probs: (active, vocab). :param rows: (active,) the rows' places in the full
        batch (their keys). :return: (active,) the chosen token ids."""
        probs = sampling_probabilities(log_probs, self.temperature, self.top_k, self.top_p)
        cdf = probs.cumsum(dim=-1)
        target = uniforms(self.keys[rows], step) * cdf[:, -1]
        # The first token whose cumulative probability exceeds the target; tokens with zero
        # probability have an empty interval and are never chosen.
        chosen = torch.searchsorted(cdf, target.unsqueeze(1), right=True).squeeze(1)
        return chosen.clamp(max=log_probs.size(-1) - 1)


@torch.inference_mode()
def sample_decode(
    model,
    src: torch.Tensor,
    src_lengths: torch.Tensor,
    *,
    num_samples: int = 1,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int = 0,
    max_len_ratio: float = 2.0,
    max_len_offset: int = 10,
    max_len: int | None = None,
    return_attention: bool = False,
    repetition: RepetitionRules | None = None,
    prefix: torch.Tensor | None = None,
) -> list[list[Hypothesis]]:
    """Draw ``num_samples`` translations per sentence.

    :param src: (batch, src_len) ids. :param src_lengths: (batch,).
    :param temperature: divides the log-probabilities (before top-k / top-p); <= 1e-5 is
        greedy search.
    :param top_k: sample among the k most probable tokens only (0: all).
    :param top_p: sample from the smallest set of tokens whose tempered probability reaches p.
    :param repetition: no-repeat n-grams and repetition penalty, applied before the
        temperature; None = neither.
    :param prefix: (batch, P) PAD-padded target ids every sample starts with (drawn with
        probability 1, scored with the model's log-probability); None = none.
    :return: per sentence, its samples sorted by model log-probability (best first); a
        sample's ``score`` is its log-probability under the unfiltered model (penalised by
        ``repetition``'s rules when given).
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if top_k < 0 or not 0.0 < top_p <= 1.0:
        raise ValueError(f"need top_k >= 0 and 0 < top_p <= 1, got {top_k} and {top_p}")
    batch = src.size(0)
    rows, keys = sample_keys(src, src_lengths, seed, num_samples)
    lengths = src_lengths[rows.to(src_lengths.device)]
    greedy = temperature <= GREEDY_TEMPERATURE
    out = decode_one_token_per_row(
        model,
        src[rows],
        lengths,
        None if greedy else Sampler(keys, temperature, top_k, top_p),
        max_len_ratio=max_len_ratio,
        max_len_offset=max_len_offset,
        max_len=max_len,
        return_attention=return_attention,
        repetition=repetition,
        prefix=None if prefix is None else prefix[rows.to(prefix.device)],
    )
    results = []
    for sentence in range(batch):
        samples = [
            Hypothesis(
                out.tokens[i],
                out.scores[i],
                out.scores[i],
                out.attention[i] if out.attention is not None else None,
                out.token_log_probs[i],
            )
            for i in range(sentence * num_samples, (sentence + 1) * num_samples)
        ]
        results.append(sorted(samples, key=lambda h: -h.score))
    return results
