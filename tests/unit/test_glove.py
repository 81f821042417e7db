"""GloVe: co-occurrence counts and one AdaGrad step against hand computations; training fits."""

from __future__ import annotations

import math

import pytest
import torch

from nmt.embeddings.glove import GloVeModel, count_cooccurrences, train_glove, weighting


def test_cooccurrences_of_a_tiny_text_by_hand():
    # sentence "0 1 2 0", window 2, symmetric, 1/d weighting:
    #   d=1: (0,1) (1,2) (2,0)      d=2: (0,2) (1,0)
    #   X[0,1] = 1 + 1/2 (d=1 pair 0-1 and d=2 pair 1-0)   X[0,2] = 1/2 + 1 (d=2 0-2, d=1 2-0)
    #   X[1,2] = 1                                          X[0,0] = 0 (distance 3 > window)
    x = count_cooccurrences([[0, 1, 2, 0]], vocab_size=3, window=2).dense()
    expected = torch.tensor([[0.0, 1.5, 1.5], [1.5, 0.0, 1.0], [1.5, 1.0, 0.0]])
    torch.testing.assert_close(x, expected)


def test_pairs_never_cross_sentences_and_options_change_the_counts():
    x = count_cooccurrences([[0, 1], [2, 3]], vocab_size=4, window=5).dense()
    assert x[1, 2] == 0 and x[0, 1] == 1 and x[2, 3] == 1
    right_only = count_cooccurrences([[0, 1, 2]], 3, 2, symmetric=False, distance_weighting=False).dense()
    torch.testing.assert_close(right_only, torch.tensor([[0.0, 1, 1], [0, 0, 1], [0, 0, 0]]))


def test_chunking_does_not_change_the_counts():
    gen = torch.Generator().manual_seed(0)
    sentences = [
        torch.randint(0, 20, (int(n),), generator=gen).tolist() for n in torch.randint(1, 15, (30,), generator=gen)
    ]
    whole = count_cooccurrences(sentences, 20, 4).dense()
    chunked = count_cooccurrences(sentences, 20, 4, chunk_tokens=7).dense()
    torch.testing.assert_close(whole, chunked)


def test_bad_ids_and_windows_are_refused():
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 3\)"):
        count_cooccurrences([[0, 3]], 3)
    with pytest.raises(ValueError, match="window must be >= 1"):
        count_cooccurrences([[0, 1]], 3, window=0)


def test_weighting_function():
    counts = torch.tensor([1.0, 50.0, 100.0, 400.0])
    expected = torch.tensor([(1 / 100) ** 0.75, 0.5**0.75, 1.0, 1.0])
    torch.testing.assert_close(weighting(counts), expected)


def test_one_adagrad_step_matches_the_hand_computed_update():
    torch.manual_seed(0)
    model = GloVeModel(3, 2)
    w0, c0 = model.words.detach().clone(), model.contexts.detach().clone()
    bw0, bc0 = model.word_bias.detach().clone(), model.context_bias.detach().clone()
    rows, cols = torch.tensor([0]), torch.tensor([2])
    x, lr = 4.0, 0.05
    f = weighting(torch.tensor([x]))
    cost = model.adagrad_step(rows, cols, torch.tensor([math.log(x)]), f, lr)
    residual = float(w0[0] @ c0[2] + bw0[0] + bc0[2] - math.log(x))
    assert cost == pytest.approx(0.5 * float(f) * residual**2, rel=1e-5)
    g = lr * float(f) * residual  # accumulators start at 1: the first step divides by sqrt(1)
    torch.testing.assert_close(model.words[0], w0[0] - g * c0[2])
    torch.testing.assert_close(model.contexts[2], c0[2] - g * w0[0])
    torch.testing.assert_close(model.word_bias[0], bw0[0] - g)
    torch.testing.assert_close(model.words_gradsq[0], 1 + (g * c0[2]) ** 2)
    torch.testing.assert_close(model.words[1], w0[1])  # untouched rows stay


def test_adagrad_step_follows_the_gradient_of_the_objective():
    torch.manual_seed(1)
    model = GloVeModel(4, 3)
    rows, cols = torch.tensor([0, 1, 3]), torch.tensor([1, 2, 0])
    logs, weights = torch.tensor([0.5, 1.0, 2.0]), torch.tensor([0.3, 1.0, 0.7])
    params = [model.words, model.contexts, model.word_bias, model.context_bias]
    for p in params:
        p.requires_grad_(True)
    model(rows, cols, logs, weights).backward()
    grads = [p.grad.clone() for p in params]
    before = [p.detach().clone() for p in params]
    for p in params:
        p.requires_grad_(False)
    model.adagrad_step(rows, cols, logs, weights, lr=0.1)
    for old, new, grad in zip(before, params, grads):  # distinct rows: step = lr * gradient / sqrt(1)
        torch.testing.assert_close(new.detach(), old - 0.1 * grad)


def test_training_lowers_the_cost_and_recovers_similar_words():
    # two groups of words that only ever co-occur within their group
    gen = torch.Generator().manual_seed(0)
    sentences = [(torch.randint(0, 5, (8,), generator=gen) + 5 * (i % 2)).tolist() for i in range(400)]
    x = count_cooccurrences(sentences, 10, 3)
    model, history = train_glove(x, 8, epochs=30, lr=0.1, x_max=10, batch_size=16, seed=0)
    assert history[-1] < history[0] / 5
    unit = torch.nn.functional.normalize(model.vectors(), dim=-1)
    similarity = unit @ unit.T
    same = similarity[:5, :5].mean() + similarity[5:, 5:].mean()
    other = 2 * similarity[:5, 5:].mean()
    assert same > other + 0.5


@pytest.mark.gpu
def test_glove_trains_on_cuda():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA")
    x = count_cooccurrences([[0, 1, 2, 3, 1, 2]] * 10, 4, 2)
    model, history = train_glove(x, 4, epochs=3, device="cuda")
    assert model.words.is_cuda and all(math.isfinite(h) for h in history)
