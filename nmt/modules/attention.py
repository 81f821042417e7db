"""Attention mechanisms: Bahdanau (additive) and Luong (dot, general).

Every mechanism scores a decoder query against the encoder's states:

* ``bahdanau``: ``score(q, h_j) = v^T tanh(W_q q + W_k h_j)``
* ``dot``:      ``score(q, h_j) = q^T h_j``
* ``general``:  ``score(q, h_j) = q^T W h_j``

then ``alpha = softmax_j(score)`` over real (unpadded) source positions and
``context = sum_j alpha_j h_j``. Whatever depends only on the encoder states (``W_k h`` or
``W h``) is computed once per batch by :meth:`Attention.prepare`, not at every step.
Scores and the softmax are computed in float32, so fp16/bf16 autocast cannot overflow them.
"""

from __future__ import annotations

import torch
from torch import nn

from nmt.config.schema import ATTENTION_MECHANISMS
from nmt.ops.precision import autocast_disabled, full_precision

ATTENTION_TYPES = ATTENTION_MECHANISMS


class Attention(nn.Module):
    """Base class: subclasses implement :meth:`project_keys` and :meth:`score`."""

    def __init__(self, query_size: int, memory_size: int) -> None:
        super().__init__()
        self.query_size = query_size
        self.memory_size = memory_size

    def project_keys(self, memory: torch.Tensor) -> torch.Tensor:
        """:param memory: (batch, src_len, memory_size). :return: keys (batch, src_len, key_size)."""
        raise NotImplementedError

    def prepare(self, memory: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What :meth:`forward` needs, computed once per batch rather than at every step.

        :param memory: (batch, src_len, memory_size) encoder states. :param mask: (batch, src_len).
        :return: ``keys`` (batch, src_len, key_size), float32 or wider, and ``memory`` with
            its padded positions zeroed: their weight is exactly 0, but 0 x NaN (or inf) is
            NaN, and the weighted sum would spread it to the whole sentence's context.
        """
        memory = memory.masked_fill(~mask.unsqueeze(-1), 0.0)
        return full_precision(self.project_keys(memory)), memory

    def score(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """:param query: (batch, queries, query_size). :param keys: (batch, src_len, key_size).
        :return: unnormalised scores (batch, queries, src_len)."""
        raise NotImplementedError

    def forward(
        self,
        query: torch.Tensor,
        keys: torch.Tensor,
        memory: torch.Tensor,
        mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend from one query per sentence (a decoder step), or from several (all target
        positions at once, when they do not depend on each other).

        :param query: (batch, query_size) or (batch, queries, query_size) decoder states.
        :param keys: (batch, src_len, key_size) from :meth:`prepare`.
        :param memory: (batch, src_len, memory_size) encoder states (the values), finite at
            padded positions (:meth:`prepare` zeroes them).
        :param mask: (batch, src_len) bool, True at real source tokens.
        :return: ``context`` (batch, [queries,] memory_size) in memory's dtype and ``weights``
            (batch, [queries,] src_len) float32, zero at padding, summing to 1 over real tokens.
        """
        single = query.dim() == 2
        queries = query.unsqueeze(1) if single else query
        with autocast_disabled(query):  # scores in float32 (keys were promoted once, in prepare)
            scores = self.score(full_precision(queries), full_precision(keys)).float()
        scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        context = torch.bmm(weights.to(memory.dtype), memory)
        if single:
            return context.squeeze(1), weights.squeeze(1)
        return context, weights


class BahdanauAttention(Attention):
    """Additive attention (Bahdanau et al., 2015) with keys projected once per batch."""

    kind = "bahdanau"

    def __init__(self, query_size: int, memory_size: int, attention_size: int) -> None:
        super().__init__(query_size, memory_size)
        self.key_layer = nn.Linear(memory_size, attention_size, bias=False)
        self.query_layer = nn.Linear(query_size, attention_size, bias=True)
        self.energy_layer = nn.Linear(attention_size, 1, bias=False)

    def project_keys(self, memory: torch.Tensor) -> torch.Tensor:
        return self.key_layer(memory)

    # Elements of the (batch, queries, src_len, attention_size) energy tensor made at once:
    # scoring all target positions of a long (character-level) batch is done in slices.
    MAX_ENERGY_ELEMENTS = 1 << 23

    def score(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        projected = self.query_layer(query)  # (batch, queries, attention_size)
        batch, queries, size = projected.shape
        chunk = max(1, self.MAX_ENERGY_ELEMENTS // max(1, batch * keys.size(1) * size))
        scores = [
            self.energy_layer(torch.tanh(keys.unsqueeze(1) + projected[:, start : start + chunk].unsqueeze(2))).squeeze(
                -1
            )
            for start in range(0, queries, chunk)
        ]
        return scores[0] if len(scores) == 1 else torch.cat(scores, dim=1)


class DotAttention(Attention):
    """Luong dot-product attention; the query and the encoder states must have one size."""

    kind = "dot"

    def __init__(self, query_size: int, memory_size: int) -> None:
        if query_size != memory_size:
            raise ValueError(
                f"dot attention needs equal decoder ({query_size}) and encoder ({memory_size}) "
                "state sizes: use attention=general or attention=bahdanau"
            )
        super().__init__(query_size, memory_size)

    def project_keys(self, memory: torch.Tensor) -> torch.Tensor:
        return memory

    def score(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        return torch.bmm(query, keys.transpose(1, 2))


class GeneralAttention(DotAttention):
    """Luong bilinear ("general") attention: ``q^T W h``, with ``W h`` computed once."""

    kind = "general"

    def __init__(self, query_size: int, memory_size: int) -> None:
        Attention.__init__(self, query_size, memory_size)
        self.key_layer = nn.Linear(memory_size, query_size, bias=False)

    def project_keys(self, memory: torch.Tensor) -> torch.Tensor:
        return self.key_layer(memory)


def build_attention(kind: str, query_size: int, memory_size: int, attention_size: int | None = None) -> Attention:
    """Make the attention named ``kind`` (one of :data:`ATTENTION_TYPES`)."""
    if kind == "bahdanau":
        return BahdanauAttention(query_size, memory_size, attention_size or query_size)
    if kind == "dot":
        return DotAttention(query_size, memory_size)
    if kind == "general":
        return GeneralAttention(query_size, memory_size)
    raise ValueError(f"unknown attention {kind!r}: use attention=bahdanau, attention=dot or attention=general")
