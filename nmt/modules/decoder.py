"""Attentional recurrent decoder (Luong et al., 2015), with or without input feeding.

One step, for target position t:

    x_t      = [embed(y_{t-1}); h~_{t-1}]             (input feeding; without it x_t = embed(y_{t-1}))
    s_t      = RNN(x_t, s_{t-1})                       (stacked LSTM/GRU layers)
    c_t, a_t = attention(s_t, encoder states)
    h~_t     = tanh(W_c [s_t; c_t])                    (attentional state, fed to the output layer)

The first state comes from a bridge: ``tanh(W_b h_enc)`` of the encoder's final state.

Without attention (``attention=None``: the plain encoder-decoder of Sutskever et al. 2014 and
of the character-level Keras seq2seq, or a language model) the bridged final encoder state is
all the decoder gets, and its output is ``s_t`` itself. A language model has no encoder at
all (``memory_size=None``): it starts from :meth:`AttentionDecoder.zero_state`.
:class:`~nmt.modules.bahdanau_decoder.BahdanauDecoder` is Bahdanau's own order (attention
before the cell).

Training over a known target (:meth:`AttentionDecoder.teacher_forced`) avoids work a naive
step loop repeats:

* the embedding half of the first layer's input product, ``embed(y) W_e``, is computed for
  all positions in one matrix product before the loop (only ``h~ W_f`` and ``s W_hh`` are
  left per step);
* without input feeding nothing depends on the previous h~, so the recurrence is one call
  of PyTorch's fused ``nn.LSTM``/``nn.GRU`` over all positions, and attention, ``W_c`` and
  the output layer run once over all positions: no Python loop at all.
* with input feeding (one LSTM or GRU layer, full precision) the step loop is
  :mod:`nmt.ops.input_feeding`'s, whose hand-written backward computes each weight's
  gradient as one matrix product over all steps instead of autograd's T small ones.

Mixed precision: the matrix products run in the autocast dtype (bf16/fp16), but the gate
nonlinearities and the recurrent state (h, c, and the fed-back h~) are float32, so rounding
errors do not accumulate over the steps of a long sentence. Int8 decoding on a CPU
(:func:`nmt.ops.quantization.int8_decoding_copy`) gives each LSTM layer one int8 product
per step over ``[fed-back h~ or the lower layer's h; h_{t-1}]`` (:attr:`step_products`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from nmt.modules.attention import Attention
from nmt.modules.encoder import RNN_CELLS, STEP_CELLS, check_cell
from nmt.ops.input_feeding import fused_loop_applies, input_feeding_loop
from nmt.ops.precision import autocast_disabled, full_precision


def lstm_cell(
    input_gates: torch.Tensor, h: torch.Tensor, c: torch.Tensor, weight_hh: torch.Tensor, bias_hh: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One LSTM step (PyTorch's gate order i, f, g, o) with float32 state.

    :param input_gates: (batch, 4 * hidden) ``x W_ih^T + b_ih``, computed by the caller (for
        all positions at once where it can). :param h, c: (batch, hidden), float32 (or float64).
    :return: the new h and c. Equals ``nn.LSTMCell`` without autocast.
    """
    return lstm_gates(input_gates + F.linear(h, weight_hh, bias_hh), c)


def lstm_gates(gates: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The LSTM's nonlinearities: :param gates: (batch, 4 * hidden) the whole pre-activation
    ``x W_ih^T + b_ih + h W_hh^T + b_hh``; :param c: (batch, hidden). :return: the new h and c,
    float32 (or float64)."""
    i, f, g, o = full_precision(gates).chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def gru_cell(
    input_gates: torch.Tensor, h: torch.Tensor, weight_hh: torch.Tensor, bias_hh: torch.Tensor
) -> torch.Tensor:
    """One GRU step (gate order r, z, n) with a float32 state; equals ``nn.GRUCell``.

    :param input_gates: (batch, 3 * hidden) ``x W_ih^T + b_ih``. :param h: (batch, hidden).
    """
    x_r, x_z, x_n = full_precision(input_gates).chunk(3, dim=-1)
    h_r, h_z, h_n = full_precision(F.linear(h, weight_hh, bias_hh)).chunk(3, dim=-1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return (1 - z) * n + z * h


def rnn_cell(
    input_gates: torch.Tensor, h: torch.Tensor, weight_hh: torch.Tensor, bias_hh: torch.Tensor
) -> torch.Tensor:
    """One step of Elman's tanh RNN with a float32 state; equals ``nn.RNNCell``.

    :param input_gates: (batch, hidden) ``x W_ih^T + b_ih``. :param h: (batch, hidden).
    """
    return torch.tanh(full_precision(input_gates) + full_precision(F.linear(h, weight_hh, bias_hh)))


@dataclass
class EncodedSource:
    """What the decoder attends to, computed once per batch.

    :ivar memory: (batch, src_len, memory_size) encoder states.
    :ivar keys: (batch, src_len, key_size) attention keys (projected once).
    :ivar mask: (batch, src_len) bool, True at real tokens.
    """

    memory: torch.Tensor
    keys: torch.Tensor
    mask: torch.Tensor

    def select(self, index: torch.Tensor) -> EncodedSource:
        """Rows ``index`` (1-D LongTensor) of the batch, e.g. to repeat sentences for a beam.
        (``index_select``: on a CPU several times faster than indexing with a tensor,
        docs/results.md.)"""
        return EncodedSource(
            self.memory.index_select(0, index), self.keys.index_select(0, index), self.mask.index_select(0, index)
        )


@dataclass
class DecoderState:
    """Recurrent state between decoder steps.

    :ivar hidden: (layers, batch, hidden_size).
    :ivar cell: (layers, batch, hidden_size) for an LSTM, None for a GRU.
    :ivar feed: (batch, hidden_size) the previous attentional state h~ (input feeding).
    """

    hidden: torch.Tensor
    cell: torch.Tensor | None
    feed: torch.Tensor

    def select(self, index: torch.Tensor) -> DecoderState:
        """Rows ``index`` (1-D LongTensor) of the batch (reordering beams, dropping finished sentences)."""
        cell = None if self.cell is None else self.cell.index_select(1, index)
        return DecoderState(self.hidden.index_select(1, index), cell, self.feed.index_select(0, index))


class AttentionDecoder(nn.Module):
    """Stacked LSTM/GRU layers with attention, with or without input feeding; produces
    attentional states (or, without attention, the top layer's states).

    With input feeding the layers are ``nn.LSTMCell``/``nn.GRUCell`` (``cells``) driven step
    by step; without it they are one ``nn.LSTM``/``nn.GRU`` (``rnn``) that training runs over
    all positions at once and decoding steps through with the same weights.
    """

    def __init__(
        self,
        embed_size: int,
        hidden_size: int,
        memory_size: int | None,
        attention: Attention | None,
        num_layers: int = 1,
        cell: str = "lstm",
        dropout: float = 0.0,
        input_feeding: bool = True,
    ) -> None:
        """:param memory_size: the encoder states' size; None for a language model (no
        encoder, no bridge). :param attention: None for a decoder without attention."""
        super().__init__()
        if attention is None and input_feeding:
            raise ValueError(
                "input feeding feeds the attentional state back into the decoder, and without "
                "attention there is none: set model.input_feeding=false"
            )
        if attention is not None and memory_size is None:
            raise ValueError("attention needs encoder states: give memory_size")
        self.cell_type = check_cell(cell)
        self.embed_size = embed_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.input_feeding = input_feeding
        if input_feeding:
            cell_class = STEP_CELLS[self.cell_type]
            self.cells: nn.ModuleList | None = nn.ModuleList(
                cell_class(embed_size + hidden_size if layer == 0 else hidden_size, hidden_size)
                for layer in range(num_layers)
            )
            self.rnn: nn.RNNBase | None = None
        else:
            self.cells = None
            self.rnn = RNN_CELLS[self.cell_type](
                embed_size,
                hidden_size,
                num_layers=num_layers,
                batch_first=True,
                dropout=dropout if num_layers > 1 else 0.0,
            )
            self._register_load_state_dict_pre_hook(_cells_to_rnn_keys)
        self.attention = attention
        self.bridge_hidden = nn.Linear(memory_size, num_layers * hidden_size) if memory_size is not None else None
        self.bridge_cell = (
            nn.Linear(memory_size, num_layers * hidden_size)
            if memory_size is not None and self.cell_type == "lstm"
            else None
        )
        self.combine = (  # attention implies memory_size (checked above)
            nn.Linear(hidden_size + memory_size, hidden_size, bias=False)
            if attention is not None and memory_size is not None
            else None
        )
        self.dropout = nn.Dropout(dropout)
        self._gate_table: tuple | None = None
        self.step_products: nn.ModuleList | None = None
        """Decoding only, LSTM only (set on a frozen copy by
        :func:`nmt.ops.quantization.int8_decoding_copy`): per layer, one module mapping
        ``[the layer's inputs not in the caller's gates; h_{t-1}]`` to the rest of its gates
        (:meth:`recurrent_step`). None: the weights' own float products."""
        self.fused_loop = True
        """Teacher forcing with input feeding runs :mod:`nmt.ops.input_feeding`'s loop
        where it applies; False keeps autograd's step loop (for comparisons)."""

    def layer_weights(self, layer: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``weight_ih, weight_hh, bias_ih, bias_hh`` of ``layer``, whichever module holds them."""
        if self.rnn is not None:
            return tuple(
                getattr(self.rnn, f"{name}_l{layer}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            )
        assert self.cells is not None  # without an rnn, the decoder has cells
        cell = cast(nn.RNNCellBase, self.cells[layer])
        return cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh

    def embedding_gates(self, embedded: torch.Tensor) -> torch.Tensor:
        """The first layer's input product for the embedding part of its input.

        :param embedded: (..., embed_size). :return: (..., gates * hidden), bias included.
        """
        weight_ih, _, bias_ih, _ = self.layer_weights(0)
        return F.linear(embedded, weight_ih[:, : self.embed_size], bias_ih)

    def embedding_gate_table(self, embedding_weight: torch.Tensor) -> torch.Tensor:
        """:meth:`embedding_gates` of every vocabulary entry, (vocab, gates * hidden), for
        decoding: a row lookup per step instead of a matrix product.

        Cached until the module changes mode (``train()``/``eval()``: training changes the
        weights, and fused optimisers do so without bumping tensors' version counters) or a
        weight is changed in place, moved or reloaded.
        """
        weight_ih, _, bias_ih, _ = self.layer_weights(0)
        key = tuple((t.data_ptr(), t._version, t.dtype, t.device) for t in (embedding_weight, weight_ih, bias_ih))
        if self._gate_table is None or self._gate_table[0] != key:
            with torch.no_grad():
                self._gate_table = (key, self.embedding_gates(embedding_weight))
        return self._gate_table[1]

    def train(self, mode: bool = True) -> AttentionDecoder:
        self._gate_table = None
        return super().train(mode)

    def init_state(self, encoder_final: torch.Tensor) -> DecoderState:
        """:param encoder_final: (batch, memory_size) the encoder's final state."""
        if self.bridge_hidden is None:
            raise ValueError("this decoder has no encoder to start from: use zero_state")
        batch = encoder_final.size(0)

        def bridge(layer: nn.Linear) -> torch.Tensor:
            out = full_precision(torch.tanh(layer(encoder_final)))
            return out.view(batch, self.num_layers, self.hidden_size).transpose(0, 1).contiguous()

        cell = bridge(self.bridge_cell) if self.bridge_cell is not None else None
        feed = full_precision(encoder_final.new_zeros(batch, self.hidden_size))
        return DecoderState(bridge(self.bridge_hidden), cell, feed)

    def zero_state(self, batch: int, device: torch.device | str = "cpu") -> DecoderState:
        """An all-zero state in the weights' precision (float32 under bf16/fp16 weights),
        where there is no encoder (a language model)."""
        dtype = full_precision(self.layer_weights(0)[1][:0]).dtype
        zeros = torch.zeros(self.num_layers, batch, self.hidden_size, device=device, dtype=dtype)
        cell = zeros.clone() if self.cell_type == "lstm" else None
        return DecoderState(zeros, cell, zeros.new_zeros(batch, self.hidden_size))

    def step(
        self,
        embedded: torch.Tensor | None,
        state: DecoderState,
        source: EncodedSource | None,
        embedding_gates: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor | None]:
        """Advance one target position.

        :param embedded: (batch, embed_size) embedding of the previous target token, or None
            when ``embedding_gates`` is given.
        :param embedding_gates: (batch, gates * hidden) :meth:`embedding_gates` of it, when
            the caller computed it already (for all positions, or from a lookup table).
        :param source: the encoded source; unused (may be None) without attention.
        :return: ``attentional`` (batch, hidden_size), the new state, and attention weights
            (batch, src_len) or None without attention; all float32.
        """
        if embedding_gates is None:
            assert embedded is not None, "give embedded or embedding_gates"
            embedding_gates = self.embedding_gates(embedded)
        hidden, cell = self.recurrent_step(embedding_gates, state, state.feed if self.input_feeding else None)
        query = hidden[-1]
        if self.attention is None:
            return query, DecoderState(hidden, cell, query), None
        assert source is not None, "attention needs the encoded source"
        context, weights = self.attention(query, source.keys, source.memory, source.mask)
        attentional = self.attentional_state(query, context)
        return attentional, DecoderState(hidden, cell, attentional), weights

    def recurrent_step(
        self, first_layer_gates: torch.Tensor, state: DecoderState, fed_back: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Advance the stacked layers one position.

        :param first_layer_gates: (batch, gates * hidden) the first layer's input product
            ``x W_ih^T + b_ih`` for the inputs the caller has (the embedding, Bahdanau's context).
        :param fed_back: (batch, hidden) the previous attentional state h~ (input feeding),
            the first layer's remaining input, or None. :param state: the previous state.
        :return: the new ``hidden`` and ``cell`` (None for a GRU), (layers, batch, hidden), float32.
        """
        hiddens, cells = [], []
        layer_input = first_layer_gates  # replaced by each layer's output; read from layer 1 on
        for layer in range(self.num_layers):
            weight_ih, weight_hh, bias_ih, bias_hh = self.layer_weights(layer)
            extra = fed_back if layer == 0 else layer_input  # inputs whose product is still to do
            if self.step_products is not None:
                rest = state.hidden[layer] if extra is None else torch.cat([extra, state.hidden[layer]], dim=-1)
                gates = self.step_products[layer](rest)
                assert state.cell is not None  # step products are made for LSTMs only
                h, c = lstm_gates(gates if layer else first_layer_gates + gates, state.cell[layer])
                cells.append(c)
            else:
                if layer == 0:
                    input_gates = first_layer_gates
                    if fed_back is not None:
                        input_gates = input_gates + F.linear(fed_back, weight_ih[:, self.embed_size :])
                else:
                    input_gates = F.linear(layer_input, weight_ih, bias_ih)
                if state.cell is not None:
                    h, c = lstm_cell(input_gates, state.hidden[layer], state.cell[layer], weight_hh, bias_hh)
                    cells.append(c)
                elif self.cell_type == "rnn":
                    h = rnn_cell(input_gates, state.hidden[layer], weight_hh, bias_hh)
                else:
                    h = gru_cell(input_gates, state.hidden[layer], weight_hh, bias_hh)
            hiddens.append(h)
            layer_input = self.dropout(h) if layer + 1 < self.num_layers else h
        return _stack(hiddens), _stack(cells) if cells else None

    def step_product_layers(self) -> list[nn.Linear]:
        """For :attr:`step_products`: per LSTM layer, the float ``nn.Linear`` equal to what
        :meth:`recurrent_step` computes beyond the caller's gates: weight ``[W_ih's columns
        for the fed-back state (layer 0) or the layer below's h | W_hh]``, bias ``b_hh``
        (layer 0, whose ``b_ih`` is in the caller's gates) or ``b_ih + b_hh``."""
        if self.cell_type != "lstm":
            raise ValueError("fused step products are for LSTM decoders")
        layers = []
        for layer in range(self.num_layers):
            weight_ih, weight_hh, bias_ih, bias_hh = (t.detach() for t in self.layer_weights(layer))
            if layer == 0:
                parts = [weight_ih[:, self.embed_size :]] if self.input_feeding else []
                bias = bias_hh
            else:
                parts, bias = [weight_ih], bias_ih + bias_hh
            weight = torch.cat(parts + [weight_hh], dim=1)
            linear = nn.Linear(weight.size(1), weight.size(0), device="meta")  # no random init: the RNG stays put
            linear.weight, linear.bias = nn.Parameter(weight), nn.Parameter(bias.clone())
            layers.append(linear)
        return layers

    def attentional_state(self, query: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """``h~ = tanh(W_c [s; c])`` for (..., hidden) queries and (..., memory) contexts, float32."""
        assert self.combine is not None, "only a decoder with attention has an attentional state"
        return full_precision(torch.tanh(self.combine(torch.cat([query, context.to(query.dtype)], dim=-1))))

    def teacher_forced(
        self, embedded: torch.Tensor, state: DecoderState, source: EncodedSource | None, return_attention: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Run over a known target prefix.

        :param embedded: (batch, tgt_len, embed_size) embeddings of BOS + target[:-1].
        :return: attentional states (batch, tgt_len, hidden), float32, and the attention
            (batch, tgt_len, src_len) if asked for (else None: training never needs it).
        """
        if not self.input_feeding:
            return self._all_positions(embedded, state, source, return_attention)
        gates = self.embedding_gates(embedded)  # one matrix product for every position
        if self.fused_loop and fused_loop_applies(self, embedded):
            assert source is not None  # the loop applies with attention only
            cell = None if state.cell is None else state.cell[0]
            outputs, weights = input_feeding_loop(
                self, gates, state.hidden[0], cell, state.feed, source.keys, source.memory, source.mask
            )
            return outputs, weights if return_attention else None
        steps: list[torch.Tensor] = []
        attention: list[torch.Tensor] = []
        # unbind, not gates[:, t]: the backward of each indexing would be a zero-filled tensor
        # of the whole (batch, len, gates) size, T of them per batch.
        for step_gates in gates.unbind(1):
            attentional, state, step_weights = self.step(None, state, source, step_gates)
            steps.append(attentional)
            if return_attention and step_weights is not None:
                attention.append(step_weights)
        return torch.stack(steps, dim=1), torch.stack(attention, dim=1) if attention else None

    def _all_positions(
        self, embedded: torch.Tensor, state: DecoderState, source: EncodedSource | None, return_attention: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """No input feeding: the fused RNN over all positions, then attention over all of them."""
        initial = (state.hidden, state.cell) if state.cell is not None else state.hidden
        assert self.rnn is not None  # a decoder without input feeding runs one fused RNN
        with autocast_disabled(embedded):  # the recurrence keeps a float32 state
            outputs, _ = self.rnn(full_precision(embedded), initial)
        if self.attention is None:
            return outputs, None
        assert source is not None, "attention needs the encoded source"
        context, weights = self.attention(outputs, source.keys, source.memory, source.mask)
        return self.attentional_state(outputs, context), weights if return_attention else None


def _stack(layers: list[torch.Tensor]) -> torch.Tensor:
    """(layers, batch, hidden); one layer needs no copy."""
    return layers[0].unsqueeze(0) if len(layers) == 1 else torch.stack(layers)


def _cells_to_rnn_keys(state_dict, prefix, *args) -> None:
    """Checkpoints from before the fused path kept no-input-feeding layers as ``cells.N``."""
    for key in [k for k in state_dict if k.startswith(prefix + "cells.")]:
        layer, name = key[len(prefix + "cells.") :].split(".", 1)
        state_dict[f"{prefix}rnn.{name}_l{layer}"] = state_dict.pop(key)
