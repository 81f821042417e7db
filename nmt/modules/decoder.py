"""Attentional recurrent decoder with input feeding (Luong et al., 2015).

One step, for target position t:

    x_t      = [embed(y_{t-1}); h~_{t-1}]             (input feeding)
    s_t      = RNN(x_t, s_{t-1})                       (stacked LSTM/GRU cells)
    c_t, a_t = attention(s_t, encoder states)
    h~_t     = tanh(W_c [s_t; c_t])                    (attentional state, fed to the output layer)

The first state comes from a bridge: ``tanh(W_b h_enc)`` of the encoder's final state.

Mixed precision: the cells' matrix products run in the autocast dtype (bf16/fp16), but the
gate nonlinearities and the recurrent state (h, c, and the fed-back h~) are float32, so
rounding errors do not accumulate over the steps of a long sentence.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nmt.modules.attention import Attention
from nmt.modules.encoder import check_cell
from nmt.modules.precision import full_precision


def lstm_cell(x: torch.Tensor, h: torch.Tensor, c: torch.Tensor, cell: nn.LSTMCell) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of ``cell`` (PyTorch's gate order i, f, g, o) with float32 state.

    :param x: (batch, input_size). :param h, c: (batch, hidden_size), float32 (or float64).
    :return: the new h and c, float32. Equals ``cell(x, (h, c))`` without autocast.
    """
    gates = full_precision(F.linear(x, cell.weight_ih, cell.bias_ih) + F.linear(h, cell.weight_hh, cell.bias_hh))
    i, f, g, o = gates.chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def gru_cell(x: torch.Tensor, h: torch.Tensor, cell: nn.GRUCell) -> torch.Tensor:
    """One step of ``cell`` (gate order r, z, n) with a float32 state; equals ``cell(x, h)``."""
    input_gates = full_precision(F.linear(x, cell.weight_ih, cell.bias_ih))
    hidden_gates = full_precision(F.linear(h, cell.weight_hh, cell.bias_hh))
    x_r, x_z, x_n = input_gates.chunk(3, dim=-1)
    h_r, h_z, h_n = hidden_gates.chunk(3, dim=-1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return (1 - z) * n + z * h


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

    def select(self, index: torch.Tensor) -> "EncodedSource":
        """Rows ``index`` (1-D LongTensor) of the batch, e.g. to repeat sentences for a beam."""
        return EncodedSource(self.memory[index], self.keys[index], self.mask[index])


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

    def select(self, index: torch.Tensor) -> "DecoderState":
        """Rows ``index`` of the batch (reordering beams, dropping finished sentences)."""
        cell = None if self.cell is None else self.cell[:, index]
        return DecoderState(self.hidden[:, index], cell, self.feed[index])


class AttentionDecoder(nn.Module):
    """Stacked LSTM/GRU cells with attention and input feeding; produces attentional states."""

    def __init__(
        self,
        embed_size: int,
        hidden_size: int,
        memory_size: int,
        attention: Attention,
        num_layers: int = 1,
        cell: str = "lstm",
        dropout: float = 0.0,
        input_feeding: bool = True,
    ) -> None:
        super().__init__()
        self.cell_type = check_cell(cell)
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.input_feeding = input_feeding
        cell_class = nn.LSTMCell if self.cell_type == "lstm" else nn.GRUCell
        first_input = embed_size + (hidden_size if input_feeding else 0)
        self.cells = nn.ModuleList(
            cell_class(first_input if layer == 0 else hidden_size, hidden_size)
            for layer in range(num_layers)
        )
        self.attention = attention
        self.bridge_hidden = nn.Linear(memory_size, num_layers * hidden_size)
        self.bridge_cell = (
            nn.Linear(memory_size, num_layers * hidden_size) if self.cell_type == "lstm" else None
        )
        self.combine = nn.Linear(hidden_size + memory_size, hidden_size, bias=False)
        self.dropout = nn.Dropout(dropout)

    def init_state(self, encoder_final: torch.Tensor) -> DecoderState:
        """:param encoder_final: (batch, memory_size) the encoder's final state."""
        batch = encoder_final.size(0)

        def bridge(layer: nn.Linear) -> torch.Tensor:
            out = full_precision(torch.tanh(layer(encoder_final)))
            return out.view(batch, self.num_layers, self.hidden_size).transpose(0, 1).contiguous()

        cell = bridge(self.bridge_cell) if self.bridge_cell is not None else None
        feed = full_precision(encoder_final.new_zeros(batch, self.hidden_size))
        return DecoderState(bridge(self.bridge_hidden), cell, feed)

    def step(
        self, embedded: torch.Tensor, state: DecoderState, source: EncodedSource
    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor]:
        """Advance one target position.

        :param embedded: (batch, embed_size) embedding of the previous target token.
        :return: ``attentional`` (batch, hidden_size), the new state, and attention weights
            (batch, src_len); all float32.
        """
        if self.input_feeding:
            layer_input = torch.cat([embedded, state.feed.to(embedded.dtype)], dim=-1)
        else:
            layer_input = embedded
        hiddens, cells = [], []
        for layer, rnn_cell in enumerate(self.cells):
            if state.cell is not None:
                h, c = lstm_cell(layer_input, state.hidden[layer], state.cell[layer], rnn_cell)
                cells.append(c)
            else:
                h = gru_cell(layer_input, state.hidden[layer], rnn_cell)
            hiddens.append(h)
            layer_input = self.dropout(h) if layer + 1 < self.num_layers else h
        query = hiddens[-1]
        context, weights = self.attention(query, source.keys, source.memory, source.mask)
        attentional = full_precision(torch.tanh(self.combine(torch.cat([query, context.to(query.dtype)], dim=-1))))
        new_state = DecoderState(
            torch.stack(hiddens), torch.stack(cells) if cells else None, attentional
        )
        return attentional, new_state, weights
