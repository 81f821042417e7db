"""Conv1D + max-pool + LSTM text classifier (the Keras IMDB example's "cnn_lstm").

    ids -> src_embed -> dropout -> Conv1d (ReLU) -> MaxPool1d -> LSTM/GRU -> final state -> dropout -> output_layer

The convolution has ``same`` padding and padded positions are zeroed after the ReLU, so a
text's output does not depend on the padding of its batch: padding embeddings are zero (like
the zero padding of a text alone), and a pooling window that reaches into padding takes the
maximum of its real positions (ReLU outputs are >= 0). Pooling keeps ``ceil(len / pool)``
positions, which the recurrent layer reads packed; its final state is the text's summary.
A plain ``nn.Module``, usable without Lightning; same output type as
:class:`~nmt.models.classifier.TextClassifier` (``attention`` is None: there is none).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from nmt.data.tokenizers import PAD_ID
from nmt.models.classifier_output import ClassifierOutput
from nmt.modules.encoder import RNN_CELLS, check_cell
from nmt.modules.initialization import initialize_from_config
from nmt.modules.masks import padding_mask


class ConvLSTMClassifier(nn.Module):
    """Embedding, one convolution with max-pooling, one recurrent layer, linear output
    (one logit for 2 classes, else one per class)."""

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        *,
        embed_size: int = 128,
        conv_filters: int = 64,
        conv_kernel: int = 5,
        pool_size: int = 4,
        hidden_size: int = 70,
        cell: str = "lstm",
        dropout: float = 0.25,
        init: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
        if conv_kernel < 1 or conv_kernel % 2 == 0:
            raise ValueError(f"model.conv_kernel must be odd (same padding on both sides), got {conv_kernel}")
        self.num_classes = num_classes
        self.pool_size = pool_size
        self.src_embed = nn.Embedding(vocab_size, embed_size, padding_idx=PAD_ID)
        self.embed_dropout = nn.Dropout(dropout)
        self.conv = nn.Conv1d(embed_size, conv_filters, conv_kernel, padding=conv_kernel // 2)
        self.pool = nn.MaxPool1d(pool_size, ceil_mode=True)
        self.rnn = RNN_CELLS[check_cell(cell)](conv_filters, hidden_size, batch_first=True)
        self.output_dropout = nn.Dropout(dropout)
        self.output_layer = nn.Linear(hidden_size, 1 if num_classes == 2 else num_classes)
        initialize_from_config(self, init)

    @classmethod
    def from_config(cls, model: Mapping[str, Any], vocab_size: int, num_classes: int) -> ConvLSTMClassifier:
        """Build from the ``model`` config group (``conf/model/conv_lstm.yaml``)."""
        return cls(
            vocab_size,
            num_classes,
            embed_size=model["embed_size"],
            conv_filters=model["conv_filters"],
            conv_kernel=model["conv_kernel"],
            pool_size=model["pool_size"],
            hidden_size=model["hidden_size"],
            cell=model["cell"],
            dropout=model["dropout"],
            init=model.get("init"),
        )

    def transferable_parameters(self) -> list[nn.Parameter]:
        """None: no part of this network exists in a translation model."""
        return []

    def pooled_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Positions left after pooling: ``ceil(len / pool)``, at least 1."""
        return ((lengths + self.pool_size - 1) // self.pool_size).clamp(min=1)

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor) -> ClassifierOutput:
        """:param src: (batch, len) ids, PAD_ID-padded. :param src_lengths: (batch,) >= 1.
        :return: logits (batch, 1) or (batch, num_classes); attention None."""
        lengths = src_lengths.to(src.device)
        embedded = self.embed_dropout(self.src_embed(src))  # (batch, len, embed)
        features = torch.relu(self.conv(embedded.transpose(1, 2)))  # (batch, filters, len)
        features = features * padding_mask(lengths, src.size(1)).unsqueeze(1).to(features.dtype)
        pooled = self.pool(features).transpose(1, 2)  # (batch, ceil(len / pool), filters)
        packed = pack_padded_sequence(
            pooled, self.pooled_lengths(src_lengths).cpu(), batch_first=True, enforce_sorted=False
        )
        _, final = self.rnn(packed)
        hidden = final[0] if isinstance(final, tuple) else final  # (1, batch, hidden)
        return ClassifierOutput(self.output_layer(self.output_dropout(hidden[-1])), None)
