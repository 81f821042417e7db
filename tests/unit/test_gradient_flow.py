"""The gradient-flow measurement (nmt/evaluation/gradient_flow.py): exact against a hand-derived
product of Jacobians, and the vanishing/exploding behaviour it exists to show."""

from __future__ import annotations

import pytest
import torch

from nmt.evaluation.gradient_flow import gradient_norm_by_distance, plot_gradient_flow
from nmt.modules.encoder import RNNEncoder


def scalar_rnn(w_ih: float, w_hh: float, bias: float) -> RNNEncoder:
    encoder = RNNEncoder(1, 1, 1, "rnn", bidirectional=False).double().eval()
    with torch.no_grad():
        encoder.rnn.weight_ih_l0.fill_(w_ih)
        encoder.rnn.weight_hh_l0.fill_(w_hh)
        encoder.rnn.bias_ih_l0.fill_(bias)
        encoder.rnn.bias_hh_l0.zero_()
    return encoder


def test_equals_the_product_of_jacobians_of_a_scalar_tanh_rnn():
    w_ih, w_hh, bias = 0.7, 0.9, 0.1
    inputs = torch.randn(3, 6, 1, dtype=torch.double, generator=torch.Generator().manual_seed(0))
    # s_t = tanh(w_ih x_t + w_hh s_{t-1} + b): ds_T/dx_t = w_ih (1 - s_t^2) prod_{u>t} w_hh (1 - s_u^2)
    expected = torch.zeros(3, 6, dtype=torch.double)
    for b in range(3):
        state, states = torch.tensor(0.0, dtype=torch.double), []
        for t in range(6):
            state = torch.tanh(w_ih * inputs[b, t, 0] + w_hh * state + bias)
            states.append(state)
        for t in range(6):
            grad = w_ih * (1 - states[t] ** 2)
            for u in range(t + 1, 6):
                grad = grad * w_hh * (1 - states[u] ** 2)
            expected[b, t] = grad.abs()
    actual = gradient_norm_by_distance(scalar_rnn(w_ih, w_hh, bias), inputs)
    torch.testing.assert_close(actual, expected.mean(dim=0).flip(0))


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_one_value_per_position_last_position_first(cell):
    torch.manual_seed(0)
    encoder = RNNEncoder(8, 16, 1, cell, bidirectional=False).eval()
    norms = gradient_norm_by_distance(encoder, torch.randn(4, 30, 8))
    assert norms.shape == (30,) and norms.dtype == torch.float64
    assert torch.all(norms >= 0)
    assert norms[0] > 100 * norms[-1]  # at PyTorch's initialisation every cell's gradient fades


def test_a_large_recurrent_matrix_makes_the_gradient_explode():
    torch.manual_seed(0)
    encoder = RNNEncoder(8, 32, 1, "rnn", bidirectional=False).eval()
    with torch.no_grad():
        encoder.rnn.weight_hh_l0.mul_(4.0)
    norms = gradient_norm_by_distance(encoder, 0.1 * torch.randn(4, 40, 8))
    assert norms[-1] > 100 * norms[0]


def test_a_bidirectional_encoder_or_a_flat_input_is_refused():
    with pytest.raises(ValueError, match="unidirectional"):
        gradient_norm_by_distance(RNNEncoder(4, 8, 1, "lstm", bidirectional=True), torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match=r"\(batch, T, input_size\)"):
        gradient_norm_by_distance(RNNEncoder(4, 8, 1, "lstm", bidirectional=False), torch.randn(5, 4))


def test_plot_writes_a_png_and_skips_underflowed_zeros(tmp_path):
    path = plot_gradient_flow(
        {"a": torch.tensor([1.0, 0.1, 0.0]), "b": torch.tensor([1.0, 2.0, 4.0])}, tmp_path / "f" / "g.png", "t"
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
