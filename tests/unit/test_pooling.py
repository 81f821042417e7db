"""Classifier pooling (model.pooling): AttentionPooling's HAN formula over real tokens only, the
final-state query, last / mean / max, and padding independence through the whole classifier."""

from __future__ import annotations

import re

import pytest
import torch

from nmt.models.classifier import TextClassifier
from nmt.modules.masks import padding_mask
from nmt.modules.pooling import AttentionPooling, FinalStateAttentionPooling, make_pooling


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


# -- model.pooling: last, mean, max, final_state_attention ----------------------------------------


def test_mean_and_max_read_real_positions_only_and_last_is_the_final_state():
    states = torch.tensor([[[1.0, -2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = padding_mask(torch.tensor([2]), 3)
    final = torch.tensor([[7.0, 8.0]])
    mean, weights = make_pooling("mean", 2)(states, mask, final)
    torch.testing.assert_close(mean, torch.tensor([[2.0, 1.0]]))
    assert weights is None
    torch.testing.assert_close(make_pooling("max", 2)(states, mask, final)[0], torch.tensor([[3.0, 4.0]]))
    assert torch.equal(make_pooling("last", 2)(states, mask, final)[0], final)
    nan_padding = states.clone()
    nan_padding[0, 2] = float("nan")
    for kind in ("mean", "max"):
        assert not make_pooling(kind, 2)(nan_padding, mask, final)[0].isnan().any()


def test_final_state_attention_equals_a_hand_computed_bahdanau_score():
    torch.manual_seed(0)
    pool = FinalStateAttentionPooling(4, 3)
    states, final = torch.randn(2, 5, 4), torch.randn(2, 4)
    mask = padding_mask(torch.tensor([5, 3]), 5)
    pooled, weights = pool(states, mask, final)
    for b, length in enumerate((5, 3)):
        energy = torch.tanh(states[b, :length] @ pool.key_layer.weight.T + pool.query_layer(final[b]))
        expected = torch.softmax(energy @ pool.energy_layer.weight[0], dim=0)
        torch.testing.assert_close(weights[b, :length], expected)
        assert torch.all(weights[b, length:] == 0)
        torch.testing.assert_close(pooled[b], expected @ states[b, :length])
    other_query, _ = pool(states, mask, final + 1.0)
    assert not torch.allclose(other_query, pooled)  # the query is the final state


@pytest.mark.parametrize("kind", ["last", "mean", "max", "attention", "final_state_attention"])
def test_every_pooling_classifies_a_padded_batch_like_each_text_alone(kind):
    torch.manual_seed(0)
    model = TextClassifier(30, 3, embed_size=8, hidden_size=12, dropout=0.0, pooling=kind).eval()
    src = torch.randint(4, 30, (3, 6))
    lengths = torch.tensor([6, 2, 4])
    batched = model(src, lengths)
    assert batched.logits.shape == (3, 3)
    assert (batched.attention is not None) == (kind in ("attention", "final_state_attention"))
    for b, length in enumerate(lengths.tolist()):
        alone = model(src[b : b + 1, :length], lengths[b : b + 1])
        torch.testing.assert_close(alone.logits, batched.logits[b : b + 1], atol=1e-5, rtol=1e-5)


def test_the_default_pooling_keeps_the_attention_checkpoints_parameter_names():
    names = set(TextClassifier(30, 2, embed_size=8, hidden_size=8).state_dict())
    assert {"pooling.projection.weight", "pooling.context"} <= names


def test_an_unknown_pooling_names_the_choices():
    with pytest.raises(
        ValueError, match=re.escape("model.pooling=last | mean | max | attention | final_state_attention")
    ):
        make_pooling("sum", 4)
