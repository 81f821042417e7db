"""AttentionPooling: the HAN formula, computed over real tokens only."""

from __future__ import annotations

import pytest
import torch

from nmt.modules.masks import padding_mask
from nmt.modules.pooling import AttentionPooling


@pytest.fixture
def pooling() -> AttentionPooling:
    torch.manual_seed(0)
    return AttentionPooling(input_size=6, attention_size=4)


def test_padding_never_changes_pooled_vector_or_real_token_weights(pooling):
    torch.manual_seed(1)
    real = torch.randn(1, 3, 6)
    pooled_alone, weights_alone = pooling(real, torch.ones(1, 3, dtype=torch.bool))
    for garbage in (torch.zeros(1, 5, 6), 1e6 * torch.randn(1, 5, 6), torch.full((1, 5, 6), float("nan"))):
        padded = torch.cat([real, garbage], dim=1)
        pooled, weights = pooling(padded, padding_mask(torch.tensor([3]), 8))
        assert torch.allclose(pooled, pooled_alone, atol=1e-6)
        assert torch.allclose(weights[:, :3], weights_alone, atol=1e-7)
        assert torch.equal(weights[:, 3:], torch.zeros(1, 5))


def test_weights_sum_to_one_over_real_tokens_of_each_row(pooling):
    lengths = torch.tensor([1, 4, 7])
    pooled, weights = pooling(torch.randn(3, 7, 6), padding_mask(lengths, 7))
    assert pooled.shape == (3, 6) and weights.shape == (3, 7)
    assert torch.allclose(weights.sum(dim=1), torch.ones(3))
    for row, length in enumerate(lengths.tolist()):
        assert bool((weights[row, :length] > 0).all())
        assert bool((weights[row, length:] == 0).all())
    assert weights[0, 0] == 1.0  # a one-token text puts all its weight on that token


def test_matches_hand_computed_formula(pooling):
    states = torch.randn(2, 5, 6)
    lengths = torch.tensor([5, 2])
    pooled, weights = pooling(states, padding_mask(lengths, 5))
    W, b, u_w = pooling.projection.weight, pooling.projection.bias, pooling.context
    for row, length in enumerate(lengths.tolist()):
        h = states[row, :length]  # (len, 6)
        u = torch.tanh(h @ W.T + b)  # u_t = tanh(W h_t + b)
        alpha = torch.exp(u @ u_w) / torch.exp(u @ u_w).sum()  # softmax_t(u_t . u_w)
        assert torch.allclose(weights[row, :length], alpha, atol=1e-6)
        assert torch.allclose(pooled[row], (alpha.unsqueeze(1) * h).sum(0), atol=1e-6)


def test_gradients_do_not_reach_padded_states(pooling):
    states = torch.randn(1, 4, 6, requires_grad=True)
    pooled, _ = pooling(states, padding_mask(torch.tensor([2]), 4))
    pooled.sum().backward()
    assert torch.equal(states.grad[0, 2:], torch.zeros(2, 6))
    assert states.grad[0, :2].abs().sum() > 0


def test_rejects_a_row_without_real_tokens(pooling):
    with pytest.raises(ValueError, match="at least one real token"):
        pooling(torch.randn(2, 3, 6), padding_mask(torch.tensor([3, 0]), 3))


def test_rejects_mismatched_mask_shape(pooling):
    with pytest.raises(ValueError, match="expected states"):
        pooling(torch.randn(2, 3, 6), torch.ones(2, 4, dtype=torch.bool))
