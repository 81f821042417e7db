"""Recurrent language model: the translation decoder without an encoder or attention.

    ids -> embed -> dropout -> AttentionDecoder(attention=None, memory_size=None) -> dropout -> output_layer

The recurrent layers are the decoder class of :mod:`nmt.modules.decoder` (the same stacked
LSTM/GRU, float32 state under autocast, one fused ``nn.LSTM``/``nn.GRU`` call over all
positions in training), started from an all-zero state. A plain ``nn.Module``, usable without
Lightning.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from nmt.data.tokenizers import PAD_ID
from nmt.modules.decoder import AttentionDecoder, DecoderState
from nmt.modules.initialization import initialize_from_config


class LanguageModel(nn.Module):
    """p(y_t | y_<t) with a stacked LSTM/GRU; sequences start with BOS, texts end with EOS."""

    def __init__(
        self,
        vocab_size: int,
        *,
        embed_size: int = 256,
        hidden_size: int = 512,
        num_layers: int = 1,
        cell: str = "lstm",
        dropout: float = 0.2,
        tie_embeddings: bool = False,
        init: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_size, padding_idx=PAD_ID)
        self.embed_dropout = nn.Dropout(dropout)
        self.decoder = AttentionDecoder(
            embed_size, hidden_size, None, None, num_layers=num_layers, cell=cell, dropout=dropout, input_feeding=False
        )
        self.output_dropout = nn.Dropout(dropout)
        self.output_layer = nn.Linear(hidden_size, vocab_size)
        if tie_embeddings:
            if embed_size != hidden_size:
                raise ValueError(
                    f"tied output embeddings need model.embed_size ({embed_size}) == model.hidden_size "
                    f"({hidden_size}): change one or set model.tie_embeddings=false"
                )
            self.output_layer.weight = self.embed.weight
        initialize_from_config(self, init)

    @classmethod
    def from_config(cls, model: Mapping[str, Any], vocab_size: int) -> LanguageModel:
        """Build from the ``model`` config group (``conf/model/lstm_lm.yaml``)."""
        return cls(
            vocab_size,
            embed_size=model["embed_size"],
            hidden_size=model["hidden_size"],
            num_layers=model["layers"],
            cell=model["cell"],
            dropout=model["dropout"],
            tie_embeddings=model.get("tie_embeddings", False),
            init=model.get("init"),
        )

    @property
    def vocab_size(self) -> int:
        return self.output_layer.out_features

    def initial_state(self, batch: int, device: torch.device | str = "cpu") -> DecoderState:
        """The all-zero state every sequence starts from."""
        return self.decoder.zero_state(batch, device)

    def hidden_states(self, inputs: torch.Tensor, state: DecoderState | None = None) -> torch.Tensor:
        """Top-layer states over whole sequences (training and scoring).

        :param inputs: (batch, len) ids, BOS first, PAD_ID-padded at the end (padding only
            affects positions after it). :param state: the state before ``inputs``; None = zeros.
        :return: (batch, len, hidden_size), float32.
        """
        if state is None:
            state = self.initial_state(inputs.size(0), inputs.device)
        outputs, _ = self.decoder.teacher_forced(self.embed_dropout(self.embed(inputs)), state, None)
        return outputs

    def output_logits(self, states: torch.Tensor) -> torch.Tensor:
        """:param states: (..., hidden). :return: logits (..., vocab)."""
        return self.output_layer(self.output_dropout(states))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Logits (batch, len, vocab) of the next token at every position of ``inputs``."""
        return self.output_logits(self.hidden_states(inputs))

    def step(self, prev_tokens: torch.Tensor, state: DecoderState) -> tuple[torch.Tensor, DecoderState]:
        """One position: :param prev_tokens: (batch,) ids. :return: logits (batch, vocab), new state."""
        if not (self.training or torch.is_grad_enabled()):
            # Generating: the embedding's share of the first layer's input product, looked up.
            gates = self.decoder.embedding_gate_table(self.embed.weight)[prev_tokens]
            output, state, _ = self.decoder.step(None, state, None, gates)
            return self.output_layer(output), state
        output, state, _ = self.decoder.step(self.embed_dropout(self.embed(prev_tokens)), state, None)
        return self.output_logits(output), state
