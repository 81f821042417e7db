"""The encoder-decoder network, a plain ``nn.Module`` usable without Lightning."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from nmt.config.schema import DecoderStyle, choices
from nmt.data.tokenizers import PAD_ID
from nmt.modules.attention import build_attention
from nmt.modules.bahdanau_decoder import BahdanauDecoder
from nmt.modules.decoder import AttentionDecoder, DecoderState, EncodedSource
from nmt.modules.encoder import RNNEncoder
from nmt.modules.initialization import initialize_from_config
from nmt.modules.masks import padding_mask

NO_ATTENTION = "none"
DECODER_STYLES = choices(DecoderStyle)


class Seq2Seq(nn.Module):
    """Embedding -> :class:`RNNEncoder` -> decoder -> output layer.

    The decoder is :class:`AttentionDecoder` (Luong's order, ``decoder_style="luong"``; with
    ``attention="none"`` the plain encoder-decoder, whose decoder gets only the bridged final
    encoder state) or :class:`BahdanauDecoder` (``decoder_style="bahdanau"``).

    Decoding algorithms drive it through :meth:`encode` and :meth:`decode_step`;
    training uses :meth:`forward` (teacher forcing).
    """

    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        *,
        embed_size: int = 256,
        hidden_size: int = 256,
        encoder_layers: int = 1,
        decoder_layers: int = 1,
        cell: str = "lstm",
        bidirectional: bool = True,
        dropout: float = 0.2,
        recurrent_dropout: float = 0.0,
        input_feeding: bool = True,
        tie_embeddings: bool = False,
        attention: str = "bahdanau",
        attention_size: int | None = None,
        decoder_style: str = "luong",
        init: Mapping[str, Any] | None = None,
    ) -> None:
        """:param attention: a scoring function (``bahdanau``, ``dot``, ``general``) or ``none``.
        :param decoder_style: ``luong`` (attention after the cell, from s_t) or ``bahdanau``
            (attention before it, from s_{t-1}; the context enters the cell).
        :param init: the ``model.init`` config section (``scheme``, ``range``,
        ``forget_bias``; see :mod:`nmt.modules.initialization`); None keeps PyTorch's."""
        super().__init__()
        if decoder_style not in DECODER_STYLES:
            raise ValueError(f"unknown decoder style {decoder_style!r}: use model.decoder_style=luong or bahdanau")
        self.src_embed = nn.Embedding(src_vocab_size, embed_size, padding_idx=PAD_ID)
        self.tgt_embed = nn.Embedding(tgt_vocab_size, embed_size, padding_idx=PAD_ID)
        self.embed_dropout = nn.Dropout(dropout)
        self.encoder = RNNEncoder(
            embed_size, hidden_size, encoder_layers, cell, bidirectional, dropout, recurrent_dropout
        )
        scorer = (
            None
            if attention == NO_ATTENTION
            else build_attention(attention, hidden_size, self.encoder.output_size, attention_size)
        )
        self.decoder: AttentionDecoder
        if decoder_style == "bahdanau":
            if input_feeding:
                raise ValueError(
                    "model.decoder_style=bahdanau feeds the context c_t into the cell itself; Luong's "
                    "input feeding does not apply: set model.input_feeding=false"
                )
            self.decoder = BahdanauDecoder(
                embed_size,
                hidden_size,
                self.encoder.output_size,
                scorer,
                num_layers=decoder_layers,
                cell=cell,
                dropout=dropout,
            )
        else:
            self.decoder = AttentionDecoder(
                embed_size,
                hidden_size,
                self.encoder.output_size,
                scorer,
                num_layers=decoder_layers,
                cell=cell,
                dropout=dropout,
                input_feeding=input_feeding,
            )
        self.output_dropout = nn.Dropout(dropout)
        self.output_layer = nn.Linear(hidden_size, tgt_vocab_size)
        if tie_embeddings:
            if embed_size != hidden_size:
                raise ValueError(
                    f"tied output embeddings need model.embed_size ({embed_size}) == "
                    f"model.hidden_size ({hidden_size}): change one or set "
                    "model.tie_embeddings=false"
                )
            self.output_layer.weight = self.tgt_embed.weight
        initialize_from_config(self, init)

    @classmethod
    def from_config(
        cls,
        model: Mapping[str, Any],
        attention: Mapping[str, Any],
        src_vocab_size: int,
        tgt_vocab_size: int,
    ) -> Seq2Seq:
        """Build from the ``model`` and ``attention`` config groups."""
        return cls(
            src_vocab_size,
            tgt_vocab_size,
            embed_size=model["embed_size"],
            hidden_size=model["hidden_size"],
            encoder_layers=model["encoder_layers"],
            decoder_layers=model["decoder_layers"],
            cell=model["cell"],
            bidirectional=model["bidirectional"],
            dropout=model["dropout"],
            recurrent_dropout=model.get("recurrent_dropout", 0.0),  # absent in checkpoints made before it existed
            input_feeding=model["input_feeding"],
            tie_embeddings=model["tie_embeddings"],
            attention=attention["type"],
            attention_size=attention.get("size"),
            decoder_style=model.get("decoder_style", "luong"),  # absent in older checkpoints
            init=model.get("init"),  # absent in checkpoints made before it existed
        )

    @property
    def has_attention(self) -> bool:
        """False for the plain encoder-decoder (``attention=none``): no weights to return."""
        return self.decoder.attention is not None

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple[EncodedSource, DecoderState]:
        """:param src: (batch, src_len) token ids, PAD_ID-padded. :param src_lengths: (batch,).
        :return: the encoded source and the decoder's initial state."""
        memory, final = self.encoder(self.embed_dropout(self.src_embed(src)), src_lengths)
        mask = padding_mask(src_lengths.to(src.device), src.size(1))
        if self.decoder.attention is None:  # only the final state reaches the decoder
            return EncodedSource(memory, memory, mask), self.decoder.init_state(final)
        keys, memory = self.decoder.attention.prepare(memory, mask)
        return EncodedSource(memory, keys, mask), self.decoder.init_state(final)

    def decode_step(
        self, prev_tokens: torch.Tensor, state: DecoderState, source: EncodedSource
    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor | None]:
        """:param prev_tokens: (batch,) the previous target ids (BOS_ID at the start).
        :return: logits (batch, tgt_vocab), the new state, attention (batch, src_len) or None
            without attention."""
        outputs, state, weights = self.decode_step_states(prev_tokens, state, source)
        return self.output_logits(outputs), state, weights

    def decode_step_states(
        self, prev_tokens: torch.Tensor, state: DecoderState, source: EncodedSource
    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor | None]:
        """:meth:`decode_step` without the output layer: the decoder's outputs (batch,
        hidden), for a caller that runs :meth:`output_logits` itself (in slices of rows)."""
        if not (self.training or torch.is_grad_enabled()):
            # Decoding: the embedding's share of the first layer's input product, looked up.
            gates = self.decoder.embedding_gate_table(self.tgt_embed.weight)[prev_tokens]
            return self.decoder.step(None, state, source, gates)
        embedded = self.embed_dropout(self.tgt_embed(prev_tokens))
        return self.decoder.step(embedded, state, source)

    def teacher_forced_states(
        self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor, return_attention: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Run the decoder over a known target prefix.

        :param src: (batch, src_len). :param src_lengths: (batch,).
        :param tgt_in: (batch, tgt_len) BOS followed by the target (shifted right).
        :return: attentional states (batch, tgt_len, hidden) and, if asked for, the attention
            (batch, tgt_len, src_len) (training does not need it).
        """
        source, state = self.encode(src, src_lengths)
        embedded = self.embed_dropout(self.tgt_embed(tgt_in))
        return self.decoder.teacher_forced(embedded, state, source, return_attention)

    def output_logits(self, states: torch.Tensor) -> torch.Tensor:
        """:param states: (..., hidden) attentional states. :return: logits (..., tgt_vocab)."""
        return self.output_layer(self.output_dropout(states))

    def forward(
        self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Teacher-forced pass: logits (batch, tgt_len, tgt_vocab), attention (batch, tgt_len,
        src_len) or None without attention."""
        states, attention = self.teacher_forced_states(src, src_lengths, tgt_in, return_attention=True)
        # One big output projection instead of one per step.
        return self.output_logits(states), attention
