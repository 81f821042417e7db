"""Repetition and coverage: what every decoder may apply on top of the model's scores.

* **No-repeat n-grams**: a hypothesis never repeats an n-gram of size ``n``; a token that
  would complete an n-gram already in the hypothesis gets a logit of -inf.
* **Repetition penalty** (CTRL, Keskar et al. 2019): the logit of every token already in the
  hypothesis is divided by the penalty when positive and multiplied by it when negative, so
  a penalty above 1 makes those tokens less likely whatever the logit's sign.
* **Coverage penalty** (GNMT, Wu et al. 2016), for beam search's final scores:
  ``cp = beta * sum_i log(min(sum_j a_ij, 1))`` over the source positions ``i``, with
  ``a_ij`` the attention of output step ``j`` on source position ``i``. It is <= 0, and 0
  once every source position has received a total attention of at least 1.

The first two change the logits before the softmax, so the decoder's distribution (and the
scores it reports) is the renormalised, penalised one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nmt.data.tokenizers import PAD_ID

COVERAGE_FLOOR = 1e-10
"""Smallest coverage a source position counts with: ``log 0`` would give a hypothesis that
left one position unattended a score of -inf, below even "no hypothesis yet"."""


@dataclass(frozen=True)
class RepetitionRules:
    """How a hypothesis is kept from repeating itself; the defaults change nothing.

    :ivar no_repeat_ngram_size: n-grams of this size occur at most once; 0 = off.
    :ivar repetition_penalty: CTRL penalty on tokens already generated; 1 = off.
    """

    no_repeat_ngram_size: int = 0
    repetition_penalty: float = 1.0

    def __post_init__(self) -> None:
        problems = repetition_problems(self.no_repeat_ngram_size, self.repetition_penalty)
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def active(self) -> bool:
        return self.no_repeat_ngram_size > 0 or self.repetition_penalty != 1.0

    def apply(self, logits: torch.Tensor, history: torch.Tensor) -> torch.Tensor:
        """The penalised logits (modified in place).

        :param logits: (rows, vocab) next-token logits.
        :param history: (rows, t) ids each row has so far, PAD where a row has none (PAD is
            never a real token: it is never penalised into a candidate).
        :return: ``logits``.
        """
        if self.repetition_penalty != 1.0:
            penalize_repetitions(logits, history, self.repetition_penalty)
        if self.no_repeat_ngram_size > 0:
            ban_repeated_ngrams(logits, history, self.no_repeat_ngram_size)
        return logits


def repetition_problems(no_repeat_ngram_size: int, repetition_penalty: float) -> list[str]:
    """What is wrong with these values, one message per problem (empty: fine)."""
    problems = []
    if no_repeat_ngram_size < 0:
        problems.append(f"no-repeat n-gram size must be >= 0 (0 = off), got {no_repeat_ngram_size}")
    if not 0.0 < repetition_penalty < float("inf"):
        problems.append(f"repetition penalty must be a finite number > 0 (1 = off), got {repetition_penalty}")
    return problems


def penalize_repetitions(logits: torch.Tensor, history: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL's repetition penalty, in place: for each token in a row's history, its logit
    ``x`` becomes ``x / penalty`` if ``x > 0`` else ``x * penalty`` (once, however often the
    token occurs).

    :param logits: (rows, vocab). :param history: (rows, t) ids. :return: ``logits``.
    """
    if history.size(1) == 0:
        return logits
    seen = logits.gather(1, history)
    # Every occurrence of a token writes the same value, so repeated ids scatter deterministically.
    logits.scatter_(1, history, torch.where(seen > 0, seen / penalty, seen * penalty))
    return logits


def ban_repeated_ngrams(logits: torch.Tensor, history: torch.Tensor, n: int) -> torch.Tensor:
    """Give -inf, in place, to every token that would complete an n-gram already in its row's
    history: the token after each earlier occurrence of the history's last ``n - 1`` ids.

    :param logits: (rows, vocab). :param history: (rows, t) ids; n-grams holding PAD never
        match. :param n: >= 1 (1 bans every token already generated). :return: ``logits``.
    """
    t = history.size(1)
    if t < n or n < 1:
        return logits
    windows = history.unfold(1, n, 1)  # (rows, t - n + 1, n): every n-gram so far
    suffix = history[:, t - n + 1 :].unsqueeze(1)  # (rows, 1, n - 1): what the next token completes
    matches = (windows[:, :, :-1] == suffix).all(dim=-1) & (windows != PAD_ID).all(dim=-1)
    # Non-matches ban PAD, which no decoder ever emits, so every write is the same -inf.
    banned = torch.where(matches, windows[:, :, -1], PAD_ID)
    logits.scatter_(1, banned, float("-inf"))
    return logits


def coverage_penalty(coverage: torch.Tensor, src_lengths: torch.Tensor, beta: float) -> torch.Tensor:
    """GNMT's coverage penalty ``beta * sum_i log(min(coverage_i, 1))`` over real source positions.

    :param coverage: (rows, src_len) attention summed over the output steps so far.
    :param src_lengths: (rows,) real source positions of each row (the rest is padding).
    :return: (rows,) penalties, <= 0, float64.
    """
    real = torch.arange(coverage.size(1), device=coverage.device) < src_lengths.unsqueeze(1)
    logs = coverage.double().clamp(min=COVERAGE_FLOOR, max=1.0).log()
    return beta * torch.where(real, logs, 0.0).sum(dim=1)
