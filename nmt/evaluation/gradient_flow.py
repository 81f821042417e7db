"""How far back a recurrent network's gradient reaches: vanishing and exploding gradients.

A loss read at the last position of a sequence, ``L = sum(s_T)`` (the final state's components
summed: a fixed readout that favours none of them), is differentiated with respect to every
input vector ``x_t``. For a tanh RNN, ``dL/dx_t`` is a product of ``T - t`` Jacobians
``diag(1 - s^2) W_hh``: it shrinks (or grows) geometrically with the distance, which is why
gated cells exist. An LSTM's cell path multiplies by the forget gate instead, so a forget-gate
bias near 1 or more keeps the gradient alive over long distances.

``scripts/gradient_flow.py`` measures and plots this for RNN, GRU and LSTM on real text;
the figure is in the docs (translation/model.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from nmt.modules.encoder import RNNEncoder


def gradient_norm_by_distance(encoder: RNNEncoder, embedded: torch.Tensor) -> torch.Tensor:
    """The gradient's size at each input position, by distance from the last one.

    :param encoder: a unidirectional :class:`RNNEncoder` (a backward direction would read
        the sequence from the other end).
    :param embedded: (batch, T, input_size) input vectors, every sequence T long.
    :return: (T,) float64: entry ``k`` is the mean over the batch of ``||dL/dx_{T-1-k}||``
        with ``L = sum(s_T)`` the last state's components summed; entry 0 is the last position.
    """
    if encoder.bidirectional:
        raise ValueError("gradient flow is measured from the last position: give a unidirectional encoder")
    if embedded.dim() != 3:
        raise ValueError(f"expected embedded (batch, T, input_size), got {tuple(embedded.shape)}")
    inputs = embedded.detach().clone().requires_grad_(True)
    lengths = torch.full((inputs.size(0),), inputs.size(1), dtype=torch.long)
    with torch.enable_grad():
        _, final = encoder(inputs, lengths)
        (gradient,) = torch.autograd.grad(final.sum(), inputs)
    return gradient.double().norm(dim=-1).mean(dim=0).flip(0)


def plot_gradient_flow(curves: Mapping[str, torch.Tensor], path: str | Path, title: str) -> Path:
    """Draw each curve of :func:`gradient_norm_by_distance` on a log scale; write a PNG.

    :param curves: label -> (T,) gradient norms by distance. Zeros (underflow) are left out.
    """
    figure = Figure(figsize=(7.5, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for label, norms in curves.items():
        values = norms.double()
        distance = torch.arange(values.numel())
        shown = values > 0
        axes.plot(distance[shown].numpy(), values[shown].numpy(), label=label)
    axes.set_yscale("log")
    axes.set_xlabel("distance from the last position (steps back)")
    axes.set_ylabel("mean ||dL / dx_t||")
    axes.set_title(title)
    axes.grid(True, which="major", alpha=0.3)
    axes.legend(fontsize="small")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path
