"""Text classifier: the translation models' embedding and encoder, then attention pooling.

    ids -> src_embed -> dropout -> RNNEncoder -> pooling (model.pooling) -> dropout -> output_layer

With a pretrained biLM (``model.contextual``, :mod:`nmt.models.contextual`) the encoder's
input is ``[src_embed(ids); ELMo(ids)]`` (``combine: concat``) or ``ELMo(ids)`` alone
(``combine: replace``, no ``src_embed``).

ELMo + GloVe (Peters et al. 2018 concatenate ELMo with GloVe): both halves read the same
``ids``, so they are aligned token by token by construction. ``src_embed`` is then filled
from a word-vector file (``model.embeddings.pretrained``, :mod:`nmt.embeddings.pretrained`)
over the biLM's vocabulary, which must be a word vocabulary (a biLM trained with
``tokenizer=word``): the encoder reads ``[GloVe(w_t); ELMo_t]``, (batch, len, dim + 2 * hidden).
A subword biLM and word vectors would need two tokenizations aligned per word; that is
refused (:mod:`nmt.config.checks`). The checkpoint holds the one tokenizer and both tables.

``src_embed`` and ``encoder`` are the same classes, with the same attribute names, as in
:class:`~nmt.models.seq2seq.Seq2Seq`, so a translation checkpoint's ``src_embed.*`` and
``encoder.*`` weights load into a classifier unchanged (see :mod:`nmt.tasks.encoder_transfer`).
A plain ``nn.Module``, usable without Lightning.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from nmt.config.schema import ContextualCombine, choices
from nmt.data.tokenizers import PAD_ID
from nmt.models.bilm import BidirectionalLanguageModel
from nmt.models.classifier_output import ClassifierOutput
from nmt.models.contextual import ContextualEmbedder
from nmt.models.conv_classifier import ConvLSTMClassifier
from nmt.modules.encoder import RNNEncoder
from nmt.modules.initialization import initialize_from_config
from nmt.modules.masks import padding_mask
from nmt.modules.pooling import make_pooling

TRANSFERABLE_MODULES = ("src_embed", "encoder")
"""Submodules shared with Seq2Seq: what a translation checkpoint can initialise."""

COMBINE_MODES = choices(ContextualCombine)
"""How contextual features reach the encoder: beside the own embedding, or instead of it."""


def contextual_from_config(contextual: Mapping[str, Any] | None, vocab_size: int) -> ContextualEmbedder | None:
    """The (untrained) biLM and scalar mix that ``model.contextual`` describes, or None.

    ``bilm_model`` is the biLM's own ``model`` config, copied into the run's config from the
    checkpoint (:mod:`nmt.tasks.contextual_transfer`), so a classifier rebuilds without that file.
    """
    if not contextual or not contextual.get("bilm_model"):
        return None
    bilm = BidirectionalLanguageModel.from_config(contextual["bilm_model"], vocab_size)
    return ContextualEmbedder(bilm, freeze=bool(contextual.get("freeze", True)))


class TextClassifier(nn.Module):
    """BiLSTM (or GRU, RNN) with attention pooling (or ``last``, ``mean``, ``max``,
    ``final_state_attention``); sigmoid output for 2 classes, softmax for more."""

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        *,
        embed_size: int = 256,
        hidden_size: int = 256,
        encoder_layers: int = 1,
        cell: str = "lstm",
        bidirectional: bool = True,
        dropout: float = 0.3,
        recurrent_dropout: float = 0.0,
        pooling: str = "attention",
        attention_size: int | None = None,
        init: Mapping[str, Any] | None = None,
        contextual: ContextualEmbedder | None = None,
        combine: str = "concat",
    ) -> None:
        """:param init: the ``model.init`` config section (see
        :mod:`nmt.modules.initialization`); None keeps PyTorch's initialisation (the
        contextual biLM's pretrained weights are never re-initialised).
        :param contextual: ELMo-style features added to the encoder's input.
        :param combine: ``concat`` (own embedding and contextual features) or ``replace``
            (contextual features only)."""
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
        if combine not in COMBINE_MODES:
            raise ValueError(f"unknown combine mode {combine!r}: use model.contextual.combine=concat or replace")
        if contextual is None and combine == "replace":
            raise ValueError("model.contextual.combine=replace needs model.contextual.bilm=PATH to a biLM checkpoint")
        self.num_classes = num_classes
        own_embedding = contextual is None or combine == "concat"
        self.src_embed = nn.Embedding(vocab_size, embed_size, padding_idx=PAD_ID) if own_embedding else None
        self.embed_dropout = nn.Dropout(dropout)
        input_size = (embed_size if own_embedding else 0) + (contextual.output_size if contextual is not None else 0)
        self.encoder = RNNEncoder(
            input_size, hidden_size, encoder_layers, cell, bidirectional, dropout, recurrent_dropout
        )
        self.pooling = make_pooling(pooling, self.encoder.output_size, attention_size)
        self.output_dropout = nn.Dropout(dropout)
        self.output_layer = nn.Linear(self.encoder.output_size, 1 if num_classes == 2 else num_classes)
        initialize_from_config(self, init)
        self.contextual = contextual  # after the initialisation, which must not touch pretrained weights

    @classmethod
    def from_config(cls, model: Mapping[str, Any], vocab_size: int, num_classes: int) -> nn.Module:
        """Build the classifier the ``model`` config group describes: this class
        (``conf/model/bilstm_attn.yaml``, ``bigru_attn.yaml``), or with
        ``architecture: conv_lstm`` a :class:`~nmt.models.conv_classifier.ConvLSTMClassifier`
        (``conf/model/conv_lstm.yaml``), which has the same inputs and output type."""
        if model.get("architecture", "rnn_attention") == "conv_lstm":
            return ConvLSTMClassifier.from_config(model, vocab_size, num_classes)
        return cls(
            vocab_size,
            num_classes,
            embed_size=model["embed_size"],
            hidden_size=model["hidden_size"],
            encoder_layers=model["encoder_layers"],
            cell=model["cell"],
            bidirectional=model["bidirectional"],
            dropout=model["dropout"],
            recurrent_dropout=model.get("recurrent_dropout", 0.0),  # absent in checkpoints made before it existed
            pooling=model.get("pooling", "attention"),  # absent in checkpoints made before it existed
            attention_size=model.get("attention_size"),
            init=model.get("init"),  # absent in checkpoints made before it existed
            contextual=contextual_from_config(model.get("contextual"), vocab_size),
            combine=(model.get("contextual") or {}).get("combine", "concat"),
        )

    def transferable_parameters(self) -> list[nn.Parameter]:
        """Embedding and encoder parameters: those a translation checkpoint provides."""
        modules = [getattr(self, name) for name in TRANSFERABLE_MODULES]
        return [p for module in modules if module is not None for p in module.parameters()]

    def contextual_parameters(self) -> list[nn.Parameter]:
        """The pretrained biLM's parameters (not the scalar mix); empty without one."""
        return list(self.contextual.bilm.parameters()) if self.contextual is not None else []

    def embed(self, src: torch.Tensor, src_lengths: torch.Tensor) -> torch.Tensor:
        """The encoder's input before dropout: (batch, len, input_size)."""
        parts = []
        if self.src_embed is not None:
            parts.append(self.src_embed(src))
        if self.contextual is not None:
            parts.append(self.contextual(src, src_lengths).to(parts[0].dtype if parts else torch.float32))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor) -> ClassifierOutput:
        """:param src: (batch, len) token ids, PAD_ID-padded. :param src_lengths: (batch,),
        each >= 1 (an empty text is one PAD token of length 1)."""
        states, final = self.encoder(self.embed_dropout(self.embed(src, src_lengths)), src_lengths)
        mask = padding_mask(src_lengths.to(src.device), src.size(1))
        pooled, weights = self.pooling(states, mask, final)
        return ClassifierOutput(self.output_layer(self.output_dropout(pooled)), weights)
