"""Bahdanau et al. (2015)'s own decoder ("RNNsearch"): attention before the recurrent cell.

One step, for target position t, with s_{t-1} the previous state of the top layer:

    c_t, a_t = attention(s_{t-1}, encoder states)          the query is the *previous* state
    s_t      = RNN([embed(y_{t-1}); c_t], s_{t-1})          the context enters the cell
    o_t      = tanh(W_o [s_t; c_t; embed(y_{t-1})])         deep output, fed to the output layer

:class:`~nmt.modules.decoder.AttentionDecoder` is Luong et al. (2015)'s order instead: the
cell runs first and its new state s_t queries the attention, ``h~_t = tanh(W_c [s_t; c_t])``.
Both start from the same bridge of the encoder's final state and take any scoring function
(``attention=bahdanau|dot|general``). The paper's output layer is a maxout over
``U_o s + V_o E y + C_o c``; this one uses tanh over the same three inputs, as Nematus does.

Since c_t depends on s_{t-1}, no step can run before the previous one: training loops over
positions too. What depends on the embedding alone (the first layer's input product for it
and its share of ``W_o``) is computed for all positions in one matrix product, and the deep
output runs once over all positions after the loop; decoding looks both up per token.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nmt.modules.attention import Attention
from nmt.modules.decoder import AttentionDecoder, DecoderState, EncodedSource
from nmt.modules.encoder import STEP_CELLS
from nmt.ops.precision import full_precision


class BahdanauDecoder(AttentionDecoder):
    """Stacked LSTM/GRU cells whose first layer reads ``[embed(y_{t-1}); c_t]``.

    Luong's input feeding does not apply (the context already enters the cell). The first
    layer's ``weight_ih`` columns are ``[embedding | context]``; ``readout.weight`` columns
    are ``[state | context | embedding]``.
    """

    def __init__(
        self,
        embed_size: int,
        hidden_size: int,
        memory_size: int,
        attention: Attention | None,  # required: None is refused with the fix
        num_layers: int = 1,
        cell: str = "lstm",
        dropout: float = 0.0,
    ) -> None:
        if attention is None:
            raise ValueError(
                "Bahdanau's decoder is defined by its attention: use model.decoder_style=luong with attention=none"
            )
        super().__init__(embed_size, hidden_size, memory_size, attention, num_layers, cell, dropout, input_feeding=True)
        self.input_feeding = False
        self.memory_size = memory_size
        cell_class = STEP_CELLS[self.cell_type]
        self.cells = nn.ModuleList(
            cell_class(embed_size + memory_size if layer == 0 else hidden_size, hidden_size)
            for layer in range(num_layers)
        )
        self.combine = None
        self.readout = nn.Linear(hidden_size + memory_size + embed_size, hidden_size)

    @property
    def gate_size(self) -> int:
        return self.layer_weights(0)[0].size(0)

    def embedding_gates(self, embedded: torch.Tensor) -> torch.Tensor:
        """Everything computed from the embedding alone: the first layer's input product
        for it (bias included) followed by its share of the deep output (bias included).

        :param embedded: (..., embed_size). :return: (..., gates * hidden + hidden).
        """
        weight_ih, _, bias_ih, _ = self.layer_weights(0)
        gates = F.linear(embedded, weight_ih[:, : self.embed_size], bias_ih)
        readout = F.linear(embedded, self.readout.weight[:, self.hidden_size + self.memory_size :], self.readout.bias)
        return torch.cat([gates, readout], dim=-1)

    def embedding_gate_table(self, embedding_weight: torch.Tensor) -> torch.Tensor:
        """:meth:`embedding_gates` of every vocabulary entry, (vocab, gates * hidden + hidden),
        cached as :meth:`AttentionDecoder.embedding_gate_table` is (dropped by ``train()`` /
        ``eval()``), and also rebuilt when the deep output's weights change."""
        weight_ih, _, bias_ih, _ = self.layer_weights(0)
        parts = (embedding_weight, weight_ih, bias_ih, self.readout.weight, self.readout.bias)
        key = tuple((t.data_ptr(), t._version, t.dtype, t.device) for t in parts)
        if self._gate_table is None or self._gate_table[0] != key:
            with torch.no_grad():
                self._gate_table = (key, self.embedding_gates(embedding_weight))
        return self._gate_table[1]

    def _attend_and_advance(
        self, gates: torch.Tensor, state: DecoderState, source: EncodedSource
    ) -> tuple[torch.Tensor, torch.Tensor, DecoderState]:
        """Attention from s_{t-1}, then the cells on ``[embedding; context]``.

        :param gates: (batch, gates * hidden) the embedding's input product.
        :return: the context c_t (batch, memory_size), the weights a_t (batch, src_len) and the new state.
        """
        assert self.attention is not None  # always given to this decoder
        context, weights = self.attention(state.hidden[-1], source.keys, source.memory, source.mask)
        weight_ih = self.layer_weights(0)[0]
        gates = gates + F.linear(context.to(gates.dtype), weight_ih[:, self.embed_size :])
        hidden, cell = self.recurrent_step(gates, state)
        return context, weights, DecoderState(hidden, cell, hidden[-1])

    def deep_output(self, states: torch.Tensor, contexts: torch.Tensor, embedding_part: torch.Tensor) -> torch.Tensor:
        """``tanh(W_o [s; c; e] + b)`` for (..., hidden) states, (..., memory) contexts and the
        embedding's share ``W_e e + b`` (..., hidden); float32."""
        weight = self.readout.weight
        hidden, memory = self.hidden_size, self.memory_size
        total = (
            F.linear(states.to(embedding_part.dtype), weight[:, :hidden])
            + F.linear(contexts.to(embedding_part.dtype), weight[:, hidden : hidden + memory])
            + embedding_part
        )
        return full_precision(torch.tanh(total))

    def step(
        self,
        embedded: torch.Tensor | None,
        state: DecoderState,
        source: EncodedSource | None,
        embedding_gates: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor | None]:
        """Advance one target position (see the module docstring).

        :param embedded: (batch, embed_size), or None when ``embedding_gates`` is given.
        :param embedding_gates: (batch, gates * hidden + hidden) :meth:`embedding_gates` of it.
        :return: the deep output o_t (batch, hidden_size), the new state, and the attention
            weights a_t (batch, src_len); all float32.
        """
        assert source is not None, "attention needs the encoded source"
        if embedding_gates is None:
            assert embedded is not None, "give embedded or embedding_gates"
            embedding_gates = self.embedding_gates(embedded)
        gates, embedding_part = embedding_gates.split([self.gate_size, self.hidden_size], dim=-1)
        context, weights, state = self._attend_and_advance(gates, state, source)
        return self.deep_output(state.hidden[-1], context, embedding_part), state, weights

    def teacher_forced(
        self, embedded: torch.Tensor, state: DecoderState, source: EncodedSource | None, return_attention: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Run over a known target prefix.

        :param embedded: (batch, tgt_len, embed_size) embeddings of BOS + target[:-1].
        :return: deep outputs (batch, tgt_len, hidden), float32, and the attention
            (batch, tgt_len, src_len) if asked for, else None.
        """
        assert source is not None, "attention needs the encoded source"
        gates, embedding_part = self.embedding_gates(embedded).split([self.gate_size, self.hidden_size], dim=-1)
        states, contexts, attention = [], [], []
        for step_gates in gates.unbind(1):  # unbind: see AttentionDecoder.teacher_forced
            context, weights, state = self._attend_and_advance(step_gates, state, source)
            states.append(state.hidden[-1])
            contexts.append(context)
            if return_attention:
                attention.append(weights)
        outputs = self.deep_output(torch.stack(states, dim=1), torch.stack(contexts, dim=1), embedding_part)
        return outputs, torch.stack(attention, dim=1) if return_attention else None
