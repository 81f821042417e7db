"""Attentional recurrent decoder with input feeding (Luong et al., 2015).

One step, for target position t:

    x_t      = [embed(y_{t-1}); h~_{t-1}]             (input feeding)
    s_t      = RNN(x_t, s_{t-1})                       (stacked LSTM/GRU cells)
    c_t, a_t = attention(s_t, encoder states)
    h~_t     = tanh(W_c [s_t; c_t])                    (attentional state, fed to the output layer)

The first state comes from a bridge: ``tanh(W_b h_enc)`` of the encoder's final state.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nmt.modules.attention import Attention
from nmt.modules.encoder import check_cell


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
            out = torch.tanh(layer(encoder_final))
            return out.view(batch, self.num_layers, self.hidden_size).transpose(0, 1).contiguous()

        cell = bridge(self.bridge_cell) if self.bridge_cell is not None else None
        feed = encoder_final.new_zeros(batch, self.hidden_size)
        return DecoderState(bridge(self.bridge_hidden), cell, feed)

    def step(
        self, embedded: torch.Tensor, state: DecoderState, source: EncodedSource
    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor]:
        """Advance one target position.

        :param embedded: (batch, embed_size) embedding of the previous target token.
        :return: ``attentional`` (batch, hidden_size), the new state, and attention weights
            (batch, src_len), float32.
        """
        layer_input = torch.cat([embedded, state.feed], dim=-1) if self.input_feeding else embedded
        hiddens, cells = [], []
        for layer, rnn_cell in enumerate(self.cells):
            if state.cell is not None:
                h, c = rnn_cell(layer_input, (state.hidden[layer], state.cell[layer]))
                cells.append(c)
            else:
                h = rnn_cell(layer_input, state.hidden[layer])
            hiddens.append(h)
            layer_input = self.dropout(h) if layer + 1 < self.num_layers else h
        query = hiddens[-1]
        context, weights = self.attention(query, source.keys, source.memory, source.mask)
        attentional = torch.tanh(self.combine(torch.cat([query, context], dim=-1)))
        new_state = DecoderState(
            torch.stack(hiddens), torch.stack(cells) if cells else None, attentional
        )
        return attentional, new_state, weights
