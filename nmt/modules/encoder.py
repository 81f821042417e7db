"""Recurrent source encoder: embedding output -> contextual states."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nmt.ops.precision import autocast_disabled, full_precision

# model.cell -> the fused multi-step module and its one-step cell. "rnn" is Elman's tanh RNN:
# h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh).
RNN_CELLS: dict[str, Callable[..., nn.RNNBase]] = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}
STEP_CELLS: dict[str, Callable[..., nn.RNNCellBase]] = {"lstm": nn.LSTMCell, "gru": nn.GRUCell, "rnn": nn.RNNCell}


def check_cell(cell: str) -> str:
    """Return ``cell`` lower-cased, or raise a clear error for an unknown cell type."""
    name = cell.lower()
    if name not in RNN_CELLS:
        raise ValueError(f"unknown RNN cell {cell!r}: use model.cell=lstm, model.cell=gru or model.cell=rnn")
    return name


class RNNEncoder(nn.Module):
    """LSTM, GRU or tanh-RNN encoder over packed sequences.

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
        recurrent_dropout: float = 0.0,
    ) -> None:
        """:param dropout: between stacked layers. :param recurrent_dropout: variational dropout
        of the recurrent state (see :meth:`recurrent_weights`), in training only."""
        super().__init__()
        if not 0.0 <= recurrent_dropout < 1.0:
            raise ValueError(f"model.recurrent_dropout must be in [0, 1), got {recurrent_dropout}")
        self.recurrent_dropout = recurrent_dropout
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

    def forward(self, embedded: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
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
        dropped = self.recurrent_weights()
        if embedded.device.type == "cpu" and torch.is_grad_enabled():
            with autocast_disabled(embedded):
                return self._padded_rnn(full_precision(embedded), lengths.to(embedded.device), dropped)
        total_length = embedded.size(1)
        # pack_padded_sequence wants lengths on the CPU; enforce_sorted=False sorts internally.
        packed = pack_padded_sequence(
            full_precision(embedded), lengths.detach().cpu(), batch_first=True, enforce_sorted=False
        )
        with autocast_disabled(embedded):
            packed_out, state = functional_call(self.rnn, dropped, (packed,)) if dropped else self.rnn(packed)
        outputs, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=total_length)
        hidden = state[0] if self.cell == "lstm" else state
        # hidden: (layers * directions, batch, hidden/directions); keep the top layer.
        top = hidden.view(self.num_layers, self.num_directions, hidden.size(1), -1)[-1]
        final = torch.cat(list(top), dim=-1)
        return outputs, final

    def recurrent_weights(self) -> dict[str, torch.Tensor]:
        """Variational recurrent dropout (Gal & Ghahramani 2016): in training with
        ``recurrent_dropout`` p, every ``weight_hh`` of ``self.rnn`` with a random set of its
        columns zeroed and the rest scaled by 1 / (1 - p); {} otherwise.

        Column j of ``W_hh`` multiplies unit j of the previous state, so this drops the same
        state units at every step of the sequence (the variational mask) for the whole batch
        (one mask per batch, as AWD-LSTM's weight drop), and the fused kernels still run. The
        masks are drawn from torch's generator, whose state an exact resume restores.
        """
        if not (self.training and self.recurrent_dropout > 0.0):
            return {}
        keep = 1.0 - self.recurrent_dropout
        dropped = {}
        for name, weight in self.rnn.named_parameters():
            if name.startswith("weight_hh"):
                mask = torch.empty(weight.size(1), device=weight.device, dtype=weight.dtype).bernoulli_(keep)
                dropped[name] = weight * (mask / keep)
        return dropped

    def _padded_rnn(
        self, embedded: torch.Tensor, lengths: torch.Tensor, dropped: dict[str, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`forward` for training on a CPU, without packed sequences.

        On a CPU a packed batch takes PyTorch's step-by-step RNN (a padded one its fused
        oneDNN kernel), whose backward is much slower, for a GRU most of all (measurements in
        docs/results.md). So each layer and direction runs on the padded batch, with the very
        weights of ``self.rnn`` (``functional_call`` on a one-layer, one-direction RNN): the
        forward direction reads positions ``0..len-1`` and ignores what follows; the backward
        one reads each text reversed within its own length (padding stays at the end), then
        its outputs are put back in order. Same outputs and final states as the packed call.
        """
        total_length = embedded.size(1)
        positions = torch.arange(total_length, device=embedded.device)
        real = positions < lengths.unsqueeze(1)  # (batch, len)
        # Position t of the reversed text is position len-1-t of the text; padding stays put.
        # The permutation is its own inverse, so it also puts reversed outputs back in order.
        reverse = torch.where(real, lengths.unsqueeze(1) - 1 - positions, positions)
        last = (lengths - 1).view(-1, 1, 1)
        layer_input, finals = embedded, []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self.num_directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                weights: dict[str, torch.Tensor] = {
                    f"{name}_l0": getattr(self.rnn, f"{name}{suffix}")
                    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
                    if hasattr(self.rnn, f"{name}{suffix}")
                }
                if dropped:
                    weights["weight_hh_l0"] = dropped[f"weight_hh{suffix}"]
                step_input = layer_input if direction == 0 else _gather_positions(layer_input, reverse)
                out, _ = functional_call(self._one_direction_rnn(layer), weights, (step_input,))
                finals.append(out.gather(1, last.expand(-1, 1, out.size(-1))).squeeze(1))
                outputs.append(out if direction == 0 else _gather_positions(out, reverse))
            layer_input = torch.cat(outputs, dim=-1)
            if layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.rnn.dropout, self.training)
        return layer_input.masked_fill(~real.unsqueeze(-1), 0.0), torch.cat(finals[-self.num_directions :], dim=-1)

    def _one_direction_rnn(self, layer: int) -> nn.RNNBase:
        """A one-layer, one-direction RNN of the same cell shaped like ``self.rnn``'s layer ``layer``, kept out
        of the module's parameters (``functional_call`` gives it ``self.rnn``'s weights)."""
        cache = self.__dict__.setdefault("_one_direction_rnns", {})
        if layer not in cache:
            input_size = self.rnn.input_size if layer == 0 else self.rnn.hidden_size * self.num_directions
            # Its own (unused) initial weights must not draw from the global RNG: a resumed
            # run makes it anew, and would shift every later dropout mask.
            with torch.random.fork_rng(devices=[]):
                cache[layer] = RNN_CELLS[self.cell](
                    input_size, self.rnn.hidden_size, batch_first=True, bias=self.rnn.bias
                )
        return cache[layer]


def _gather_positions(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``values[b, index[b, t]]`` for every b, t. :param values: (batch, len, dim). :param index: (batch, len)."""
    return values.gather(1, index.unsqueeze(-1).expand(-1, -1, values.size(-1)))
