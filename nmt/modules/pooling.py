"""Pooling a text's encoder states into one vector for a classifier (``model.pooling``).

* ``last``: the encoder's final state (both directions' last states, concatenated): the
  Keras ``LSTM -> Dense`` many-to-one classifier;
* ``mean`` / ``max``: the mean or the element-wise maximum over the real positions;
* ``attention``: a learned context vector as the query (Yang et al. 2016, below);
* ``final_state_attention``: additive (Bahdanau) attention whose query is the final state,
  ``score_t = v . tanh(W_h h_t + W_q s_final + b)``, as in the course's BiLSTM + attention
  IMDB model.

Only the two attentions return weights (for highlighting words); the others return None.
Scores and softmax run in float32, so mixed precision cannot overflow them.

Yang et al. (2016), "Hierarchical Attention Networks for Document Classification", eq. 5-7:

    u_t     = tanh(W h_t + b)
    alpha_t = exp(u_t . u_w) / sum_{s real} exp(u_s . u_w)     (padding excluded)
    c       = sum_t alpha_t h_t

``u_w`` is a learned context vector.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nmt.config.schema import Pooling, choices

POOLINGS = choices(Pooling)


def _check(states: torch.Tensor, mask: torch.Tensor) -> None:
    if states.dim() != 3 or mask.shape != states.shape[:2]:
        raise ValueError(
            f"expected states (batch, len, dim) and mask (batch, len), got {tuple(states.shape)} and {tuple(mask.shape)}"
        )
    if not bool(mask.any(dim=1).all()):
        raise ValueError("pooling needs at least one real token per row")


def _attend(scores: torch.Tensor, states: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax of float32 ``scores`` (batch, len) over real positions; the weighted sum of
    ``states`` (zeroed at padding, so that 0 * NaN cannot leak in) and the weights."""
    weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
    states = states.masked_fill(~mask.unsqueeze(-1), 0.0)
    return torch.bmm(weights.unsqueeze(1).to(states.dtype), states).squeeze(1), weights


class AttentionPooling(nn.Module):
    """Masked additive attention with a learned query.

    :param input_size: size of each state ``h_t``.
    :param attention_size: size of ``u_t`` and ``u_w``; None = ``input_size``.
    """

    def __init__(self, input_size: int, attention_size: int | None = None) -> None:
        super().__init__()
        attention_size = attention_size or input_size
        self.projection = nn.Linear(input_size, attention_size)
        self.context = nn.Parameter(torch.empty(attention_size))
        nn.init.uniform_(self.context, -1 / math.sqrt(attention_size), 1 / math.sqrt(attention_size))

    def forward(
        self, states: torch.Tensor, mask: torch.Tensor, final: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Pool a padded batch.

        :param states: (batch, len, input_size) encoder outputs.
        :param mask: (batch, len) bool, True at real tokens; every row needs at least one.
        :param final: unused (the query is learned); there so that every pooling is called alike.
        :return: pooled (batch, input_size) and weights (batch, len), float32, exactly 0 at
            padding and summing to 1 over each row's real tokens.
        """
        _check(states, mask)
        # Zero the padded states too: 0 * NaN would otherwise leak into the scores.
        states = states.masked_fill(~mask.unsqueeze(-1), 0.0)
        scores = torch.tanh(self.projection(states)).float() @ self.context.float()
        return _attend(scores, states, mask)


class FinalStateAttentionPooling(nn.Module):
    """Masked additive attention whose query is the encoder's final state.

    :param input_size: size of each state ``h_t`` and of the final state.
    :param attention_size: size of the energies; None = ``input_size``.
    """

    def __init__(self, input_size: int, attention_size: int | None = None) -> None:
        super().__init__()
        attention_size = attention_size or input_size
        self.key_layer = nn.Linear(input_size, attention_size, bias=False)
        self.query_layer = nn.Linear(input_size, attention_size)
        self.energy_layer = nn.Linear(attention_size, 1, bias=False)

    def forward(
        self, states: torch.Tensor, mask: torch.Tensor, final: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:param states: (batch, len, input_size). :param mask: (batch, len) bool, True at real
        tokens. :param final: (batch, input_size) the encoder's final state.
        :return: pooled (batch, input_size) and weights (batch, len) as :class:`AttentionPooling`."""
        _check(states, mask)
        states = states.masked_fill(~mask.unsqueeze(-1), 0.0)
        energy = torch.tanh(self.key_layer(states) + self.query_layer(final).unsqueeze(1))
        scores = self.energy_layer(energy).squeeze(-1).float()
        return _attend(scores, states, mask)


class StatePooling(nn.Module):
    """Pooling without parameters or weights: ``last`` (the final state), ``mean`` or ``max``
    over the real positions."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def forward(self, states: torch.Tensor, mask: torch.Tensor, final: torch.Tensor) -> tuple[torch.Tensor, None]:
        """As :meth:`AttentionPooling.forward`, with ``final`` (batch, dim) the encoder's final
        state; no weights."""
        if self.kind == "last":
            return final, None
        _check(states, mask)
        real = mask.unsqueeze(-1)
        if self.kind == "mean":
            total = states.masked_fill(~real, 0.0).sum(dim=1)
            return total / mask.sum(dim=1, keepdim=True).to(total.dtype), None
        return states.masked_fill(~real, float("-inf")).max(dim=1).values, None


def make_pooling(kind: str, input_size: int, attention_size: int | None = None) -> nn.Module:
    """The module of ``model.pooling=kind``; each is called ``(states, mask, final)`` and returns
    (pooled (batch, input_size), weights (batch, len) or None)."""
    if kind not in POOLINGS:
        raise ValueError(f"unknown pooling {kind!r}: use model.pooling={' | '.join(POOLINGS)}")
    if kind == "attention":
        return AttentionPooling(input_size, attention_size)
    if kind == "final_state_attention":
        return FinalStateAttentionPooling(input_size, attention_size)
    return StatePooling(kind)
