"""ELMo-style contextual token features for a classifier (Peters et al. 2018, eq. 1).

    ids -> BOS ids EOS -> BidirectionalLanguageModel.layer_representations -> h_0 .. h_L
        -> ScalarMix:  ELMo_t = gamma * sum_j softmax(s)_j h_{t,j}
        -> (batch, len, 2 * hidden) aligned with ``ids`` (BOS and EOS dropped, zero at padding)

Layer 0 is the biLM's token embedding, layer j its j-th layer ``[forward; backward]``; the
forward half at token t has read the text up to t, the backward half from t to the text's end.
The text is wrapped in BOS ... EOS as in pretraining, so the first token's forward state and
the last token's backward state are in context.

A frozen biLM (``freeze=True``) gets no gradients, stays in eval mode (no dropout) whatever
the classifier's mode, and runs without building a graph; the scalar mix is trained either way.
"""

from __future__ import annotations

import torch
from torch import nn

from nmt.data.tokenizers import BOS_ID, EOS_ID, PAD_ID
from nmt.models.bilm import BidirectionalLanguageModel
from nmt.modules.masks import padding_mask


class ScalarMix(nn.Module):
    """``gamma * sum_j softmax(s)_j h_j`` with learned ``s`` (num_layers,) and ``gamma`` ().

    ``s`` starts at zero (an even average), ``gamma`` at one.
    """

    def __init__(self, num_layers: int) -> None:
        super().__init__()
        self.scalar_weights = nn.Parameter(torch.zeros(num_layers))
        self.gamma = nn.Parameter(torch.ones(()))

    def forward(self, layers: list[torch.Tensor]) -> torch.Tensor:
        """:param layers: ``num_layers`` tensors of one shape (..., dim). :return: (..., dim)."""
        if len(layers) != self.scalar_weights.numel():
            raise ValueError(f"ScalarMix has {self.scalar_weights.numel()} weights but got {len(layers)} layers")
        weights = torch.softmax(self.scalar_weights, dim=0)
        return self.gamma * torch.einsum("j,j...->...", weights, torch.stack(layers))

    def layer_weights(self) -> list[float]:
        """softmax(s), for the log."""
        return torch.softmax(self.scalar_weights.detach(), dim=0).tolist()


def add_boundaries(ids: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Wrap each text in BOS ... EOS.

    :param ids: (batch, len) PAD-padded. :param lengths: (batch,).
    :return: (batch, len + 2) ``BOS ids[:n] EOS PAD...`` and lengths + 2.
    """
    batch = ids.size(0)
    wrapped = torch.full((batch, ids.size(1) + 2), PAD_ID, dtype=ids.dtype, device=ids.device)
    wrapped[:, 0] = BOS_ID
    real = padding_mask(lengths.to(ids.device), ids.size(1))
    wrapped[:, 1:-1] = torch.where(real, ids, torch.full_like(ids, PAD_ID))
    lengths = lengths.to(ids.device)
    wrapped[torch.arange(batch, device=ids.device), lengths + 1] = EOS_ID
    return wrapped, lengths + 2


class ContextualEmbedder(nn.Module):
    """A pretrained biLM and a learned scalar mix of its layers.

    :param bilm: the pretrained network (weights loaded by the caller).
    :param freeze: True: the biLM is fixed (no grad, eval mode, no graph).
    """

    def __init__(self, bilm: BidirectionalLanguageModel, freeze: bool = True) -> None:
        super().__init__()
        self.bilm = bilm
        self.mix = ScalarMix(bilm.num_layers + 1)
        self.freeze = freeze
        if freeze:
            bilm.requires_grad_(False)
            bilm.eval()

    @property
    def output_size(self) -> int:
        return self.bilm.representation_size

    def train(self, mode: bool = True) -> ContextualEmbedder:
        super().train(mode)
        if self.freeze:
            self.bilm.eval()
        return self

    def layers(self, ids: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
        """The biLM's ``num_layers + 1`` representations of ``ids``' tokens.

        :param ids: (batch, len) PAD-padded. :param lengths: (batch,) each >= 1.
        :return: tensors (batch, len, 2 * hidden), zero at padded positions.
        """
        wrapped, wrapped_lengths = add_boundaries(ids, lengths)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
            layers = self.bilm.layer_representations(wrapped, wrapped_lengths)
        real = padding_mask(lengths.to(ids.device), ids.size(1)).unsqueeze(-1)
        return [layer[:, 1:-1].masked_fill(~real, 0.0) for layer in layers]

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """:return: (batch, len, 2 * hidden) the mixed features, zero at padded positions."""
        return self.mix(self.layers(ids, lengths))
