"""Text classifier: the translation models' embedding and encoder, then attention pooling.

    ids -> src_embed -> dropout -> RNNEncoder -> AttentionPooling -> dropout -> output_layer

``src_embed`` and ``encoder`` are the same classes, with the same attribute names, as in
:class:`~nmt.modules.seq2seq.Seq2Seq`, so a translation checkpoint's ``src_embed.*`` and
``encoder.*`` weights load into a classifier unchanged (see :mod:`nmt.encoder_transfer`).
A plain ``nn.Module``, usable without Lightning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import nn

from nmt.data.tokenizers import PAD_ID
from nmt.modules.encoder import RNNEncoder
from nmt.modules.initialization import initialize_from_config
from nmt.modules.pooling import AttentionPooling
from nmt.modules.seq2seq import padding_mask

TRANSFERABLE_MODULES = ("src_embed", "encoder")
"""Submodules shared with Seq2Seq: what a translation checkpoint can initialise."""


@dataclass
class ClassifierOutput:
    """:ivar logits: (batch, 1) for two classes (the positive class's logit), else
    (batch, num_classes). :ivar attention: (batch, len) pooling weights, float32; None for
    a model without attention (``ConvLSTMClassifier``)."""

    logits: torch.Tensor
    attention: torch.Tensor | None


def class_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """(batch, num_classes) probabilities from :attr:`ClassifierOutput.logits`, in float32.
    A single logit (binary) gives ``[1 - sigmoid, sigmoid]``."""
    logits = logits.float()
    if logits.size(-1) == 1:
        positive = torch.sigmoid(logits)
        return torch.cat([1 - positive, positive], dim=-1)
    return torch.softmax(logits, dim=-1)


def predicted_classes(logits: torch.Tensor) -> torch.Tensor:
    """(batch,) the most probable class of each row of :attr:`ClassifierOutput.logits`."""
    if logits.size(-1) == 1:
        return (logits.squeeze(-1) > 0).long()
    return logits.argmax(dim=-1)


class TextClassifier(nn.Module):
    """BiLSTM (or GRU) with attention pooling; sigmoid output for 2 classes, softmax for more."""

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
        attention_size: int | None = None,
        init: Mapping[str, Any] | None = None,
    ) -> None:
        """:param init: the ``model.init`` config section (see
        :mod:`nmt.modules.initialization`); None keeps PyTorch's initialisation."""
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
        self.num_classes = num_classes
        self.src_embed = nn.Embedding(vocab_size, embed_size, padding_idx=PAD_ID)
        self.embed_dropout = nn.Dropout(dropout)
        self.encoder = RNNEncoder(embed_size, hidden_size, encoder_layers, cell, bidirectional, dropout)
        self.pooling = AttentionPooling(self.encoder.output_size, attention_size)
        self.output_dropout = nn.Dropout(dropout)
        self.output_layer = nn.Linear(self.encoder.output_size, 1 if num_classes == 2 else num_classes)
        initialize_from_config(self, init)

    @classmethod
    def from_config(cls, model: Mapping[str, Any], vocab_size: int, num_classes: int) -> nn.Module:
        """Build the classifier the ``model`` config group describes: this class
        (``conf/model/bilstm_attn.yaml``, ``bigru_attn.yaml``), or with
        ``architecture: conv_lstm`` a :class:`~nmt.modules.conv_classifier.ConvLSTMClassifier`
        (``conf/model/conv_lstm.yaml``), which has the same inputs and output type."""
        if model.get("architecture", "rnn_attention") == "conv_lstm":
            from nmt.modules.conv_classifier import ConvLSTMClassifier

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
            attention_size=model.get("attention_size"),
            init=model.get("init"),  # absent in checkpoints made before it existed
        )

    def transferable_parameters(self) -> list[nn.Parameter]:
        """Embedding and encoder parameters: those a translation checkpoint provides."""
        return [p for name in TRANSFERABLE_MODULES for p in getattr(self, name).parameters()]

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor) -> ClassifierOutput:
        """:param src: (batch, len) token ids, PAD_ID-padded. :param src_lengths: (batch,),
        each >= 1 (an empty text is one PAD token of length 1)."""
        states, _ = self.encoder(self.embed_dropout(self.src_embed(src)), src_lengths)
        mask = padding_mask(src_lengths.to(src.device), src.size(1))
        pooled, weights = self.pooling(states, mask)
        return ClassifierOutput(self.output_layer(self.output_dropout(pooled)), weights)
