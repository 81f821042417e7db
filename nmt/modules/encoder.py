"""Recurrent source encoder: embedding output -> contextual states."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nmt.modules.precision import autocast_disabled, full_precision

RNN_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


def check_cell(cell: str) -> str:
    """Return ``cell`` lower-cased, or raise a clear error for an unknown cell type."""
    name = cell.lower()
    if name not in RNN_CELLS:
        raise ValueError(f"unknown RNN cell {cell!r}: use model.cell=lstm or model.cell=gru")
    return name


class RNNEncoder(nn.Module):
    """LSTM or GRU encoder over packed sequences.

    ``hidden_size`` is the size of every output state. A bidirectional encoder splits it
    between the two directions (``hidden_size // 2`` each), so its outputs always have
    ``hidden_size`` features and any attention can compare them with the decoder's state.

    The recurrence runs in float32 even under mixed-precision autocast: the fused RNN
    kernels would otherwise carry the recurrent state in bf16/fp16.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        cell: str = "lstm",
        bidirectional: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if bidirectional and hidden_size % 2:
            raise ValueError(
                f"a bidirectional encoder needs an even hidden size, got {hidden_size}: "
                "set model.hidden_size to an even number"
            )
        self.cell = check_cell(cell)
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.num_directions = 2 if bidirectional else 1
        self.rnn = RNN_CELLS[self.cell](
            input_size,
            hidden_size // self.num_directions,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )

    @property
    def output_size(self) -> int:
        return self.hidden_size

    def forward(
        self, embedded: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode a padded batch.

        :param embedded: (batch, src_len, input_size) source embeddings.
        :param lengths: (batch,) true lengths, each >= 1.
        :return: ``outputs`` (batch, src_len, hidden_size), zero at padded positions, and
            ``final`` (batch, hidden_size): the last layer's final state, directions
            concatenated (the hidden state for an LSTM).
        """
        if embedded.dim() != 3 or lengths.dim() != 1 or embedded.size(0) != lengths.size(0):
            raise ValueError(
                f"expected embedded (batch, len, dim) and lengths (batch,), "
                f"got {tuple(embedded.shape)} and {tuple(lengths.shape)}"
            )
        total_length = embedded.size(1)
        # pack_padded_sequence wants lengths on the CPU; enforce_sorted=False sorts internally.
        packed = pack_padded_sequence(
            full_precision(embedded), lengths.detach().cpu(), batch_first=True, enforce_sorted=False
        )
        with autocast_disabled(embedded):
            packed_out, state = self.rnn(packed)
        outputs, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=total_length)
        hidden = state[0] if self.cell == "lstm" else state
        # hidden: (layers * directions, batch, hidden/directions); keep the top layer.
        top = hidden.view(self.num_layers, self.num_directions, hidden.size(1), -1)[-1]
        final = torch.cat(list(top), dim=-1)
        return outputs, final
