"""Bidirectional language model (biLM) in the manner of ELMo (Peters et al. 2018).

Two stacks of one-direction recurrent layers, each layer the classifier's own
:class:`~nmt.modules.encoder.RNNEncoder` (unidirectional, one layer, packed), over one shared
token embedding, with one shared output layer (softmax)::

    s = BOS x_1 .. x_n EOS -> embed -> [forward layer 1 .. L]  (left to right on s)
                                    -> [backward layer 1 .. L] (right to left on s)
    forward  state at position i has read s_0 .. s_i  and predicts s_{i+1}
    backward state at position i has read s_i .. s_n+1 and predicts s_{i-1}
    loss = NLL(forward) + NLL(backward), one shared output_layer for both

The backward direction runs on each row reversed *within its own length*
(:func:`reverse_padded`), so it starts at the row's last real token, never at padding.
Layers above the first add their input to their output (ELMo's residual connection).

:meth:`BidirectionalLanguageModel.layer_representations` gives the features a downstream
model mixes (:mod:`nmt.models.contextual`): layer 0 the token embedding repeated for both
directions ``[e; e]`` (ELMo's convention, which is why ``embed_size`` must equal
``hidden_size``), then each layer's ``[forward; backward]``. A plain ``nn.Module``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from nmt.data.tokenizers import PAD_ID
from nmt.modules.encoder import RNNEncoder
from nmt.modules.initialization import initialize_from_config


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each row's first ``lengths[b]`` positions; padding stays where it is.

    :param x: (batch, len, ...) a padded batch. :param lengths: (batch,) real lengths.
    :return: same shape as ``x``; row b is ``x[b, lengths[b]-1], ..., x[b, 0], x[b, lengths[b]:]``.
    Applying it twice gives ``x`` back.
    """
    length = x.size(1)
    positions = torch.arange(length, device=x.device).unsqueeze(0)  # (1, len)
    lengths = lengths.to(x.device).unsqueeze(1)  # (batch, 1)
    index = torch.where(positions < lengths, lengths - 1 - positions, positions)  # (batch, len)
    index = index.view(*index.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, index)


@dataclass
class DirectionalStates:
    """Per-layer states of both directions, aligned with the input positions.

    :ivar embedded: (batch, len, embed_size) the token embeddings (before dropout).
    :ivar forward: one (batch, len, hidden_size) tensor per layer; position i has read 0..i.
    :ivar backward: one (batch, len, hidden_size) tensor per layer; position i has read i..len-1.
    All are zero at padded positions.
    """

    embedded: torch.Tensor
    forward: list[torch.Tensor]
    backward: list[torch.Tensor]


class BidirectionalLanguageModel(nn.Module):
    """Forward and backward LSTM/GRU language models sharing embedding and output layer."""

    def __init__(
        self,
        vocab_size: int,
        *,
        embed_size: int = 256,
        hidden_size: int = 256,
        num_layers: int = 2,
        cell: str = "lstm",
        dropout: float = 0.1,
        residual: bool = True,
        init: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_size, padding_idx=PAD_ID)
        self.dropout = nn.Dropout(dropout)
        self.forward_layers = self._stack(embed_size, hidden_size, num_layers, cell)
        self.backward_layers = self._stack(embed_size, hidden_size, num_layers, cell)
        self.output_layer = nn.Linear(hidden_size, vocab_size)
        self.residual = residual
        self.embed_size, self.hidden_size, self.num_layers = embed_size, hidden_size, num_layers
        initialize_from_config(self, init)

    @staticmethod
    def _stack(embed_size: int, hidden_size: int, num_layers: int, cell: str) -> nn.ModuleList:
        sizes = [embed_size] + [hidden_size] * (num_layers - 1)
        return nn.ModuleList(RNNEncoder(size, hidden_size, 1, cell, bidirectional=False) for size in sizes)

    @classmethod
    def from_config(cls, model: Mapping[str, Any], vocab_size: int) -> BidirectionalLanguageModel:
        """Build from the ``model`` config group of ``task: bilm`` (``conf/model/bilstm_lm.yaml``)."""
        return cls(
            vocab_size,
            embed_size=model["embed_size"],
            hidden_size=model["hidden_size"],
            num_layers=model["layers"],
            cell=model["cell"],
            dropout=model["dropout"],
            residual=model.get("residual", True),
            init=model.get("init"),
        )

    @property
    def vocab_size(self) -> int:
        return self.output_layer.out_features

    @property
    def representation_size(self) -> int:
        """Feature size of every layer of :meth:`layer_representations`."""
        return 2 * self.hidden_size

    def _run_stack(self, layers: nn.ModuleList, embedded: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
        outputs, inputs = [], embedded
        for number, layer in enumerate(layers):
            states, _ = layer(self.dropout(inputs), lengths)
            if self.residual and number > 0:
                states = states + inputs
            outputs.append(states)
            inputs = states
        return outputs

    def directional_states(self, ids: torch.Tensor, lengths: torch.Tensor) -> DirectionalStates:
        """Run both directions over ``ids``.

        :param ids: (batch, len) token ids, PAD_ID-padded at the end.
        :param lengths: (batch,) real lengths, each >= 1.
        """
        if ids.dim() != 2 or lengths.shape != ids.shape[:1]:
            raise ValueError(
                f"expected ids (batch, len) and lengths (batch,), got {tuple(ids.shape)} and {tuple(lengths.shape)}"
            )
        embedded = self.embed(ids)
        forward = self._run_stack(self.forward_layers, embedded, lengths)
        backward = self._run_stack(self.backward_layers, reverse_padded(embedded, lengths), lengths)
        return DirectionalStates(embedded, forward, [reverse_padded(states, lengths) for states in backward])

    def layer_representations(self, ids: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
        """ELMo's layers: ``[e; e]`` then ``[forward_j; backward_j]`` for j = 1..L.

        :param ids: (batch, len), :param lengths: (batch,) as in :meth:`directional_states`.
        :return: ``num_layers + 1`` tensors (batch, len, 2 * hidden_size), zero at padding.
        """
        states = self.directional_states(ids, lengths)
        token_layer = torch.cat([states.embedded, states.embedded], dim=-1).float()
        return [token_layer] + [torch.cat(pair, dim=-1) for pair in zip(states.forward, states.backward)]

    def output_logits(self, states: torch.Tensor) -> torch.Tensor:
        """:param states: (..., hidden_size) of either direction. :return: (..., vocab) logits."""
        return self.output_layer(self.dropout(states))

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits of both directions at every position of ``ids``.

        :return: ``forward_logits`` (batch, len, vocab), position i scoring ``ids[:, i+1]``,
            and ``backward_logits`` (batch, len, vocab), position i scoring ``ids[:, i-1]``.
        """
        states = self.directional_states(ids, lengths)
        return self.output_logits(states.forward[-1]), self.output_logits(states.backward[-1])
