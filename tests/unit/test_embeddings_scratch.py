"""Word vectors built by hand beside gensim: skip-gram with negative sampling (nmt/embeddings/sgns.py)
and PPMI + truncated SVD (nmt/embeddings/lsa.py), against hand computations and on a corpus whose
word classes are known."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from nmt.embeddings.glove import Cooccurrences, count_cooccurrences
from nmt.embeddings.lsa import lsa_vectors, ppmi
from nmt.embeddings.sgns import SkipGramModel, noise_distribution, skipgram_pairs, train_sgns

pytest.importorskip("sklearn")

# Two word classes that never share a sentence: animals with animal verbs, fruit with fruit verbs.
ANIMALS = ["cat", "dog", "horse", "cow"]
ANIMAL_VERBS = ["runs", "sleeps", "barks", "eats_grass"]
FRUITS = ["apple", "pear", "plum", "peach"]
FRUIT_VERBS = ["ripens", "rots", "grows", "falls"]
VOCABULARY = ANIMALS + ANIMAL_VERBS + FRUITS + FRUIT_VERBS


def class_corpus(count: int = 600, seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    index = {word: i for i, word in enumerate(VOCABULARY)}
    sentences = []
    for _ in range(count):
        nouns, verbs = (ANIMALS, ANIMAL_VERBS) if rng.random() < 0.5 else (FRUITS, FRUIT_VERBS)
        sentences.append([index[rng.choice(nouns if k % 2 == 0 else verbs)] for k in range(6)])
    return sentences


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def separates_the_classes(vectors: np.ndarray) -> bool:
    """Every animal is closer to every other animal than to any fruit, and the other way round."""
    index = {word: i for i, word in enumerate(VOCABULARY)}
    for group, other in ((ANIMALS, FRUITS), (FRUITS, ANIMALS)):
        for word in group:
            same = min(cosine(vectors[index[word]], vectors[index[w]]) for w in group if w != word)
            across = max(cosine(vectors[index[word]], vectors[index[w]]) for w in other)
            if same <= across:
                return False
    return True


# -- skip-gram pairs and noise ------------------------------------------------------------------
def test_skipgram_pairs_are_every_pair_within_the_window_inside_each_text():
    targets, contexts = skipgram_pairs([torch.tensor([1, 2, 3]), torch.tensor([4, 5]), torch.tensor([6])], window=2)
    pairs = sorted(zip(targets.tolist(), contexts.tolist(), strict=True))
    assert pairs == sorted([(1, 2), (2, 1), (2, 3), (3, 2), (1, 3), (3, 1), (4, 5), (5, 4)])


def test_noise_follows_unigram_to_the_three_quarters():
    probabilities = noise_distribution(torch.tensor([16, 1, 0]))
    torch.testing.assert_close(probabilities, torch.tensor([8.0, 1.0, 0.0], dtype=torch.float64) / 9.0)


def test_the_loss_is_the_negative_sampling_objective():
    torch.manual_seed(0)
    model = SkipGramModel(5, 3)
    torch.nn.init.normal_(model.context.weight)
    t, c, noise = torch.tensor([1, 2]), torch.tensor([3, 4]), torch.tensor([[0, 4], [1, 1]])
    w, v = model.target.weight.detach(), model.context.weight.detach()
    expected = 0.0
    for b in range(2):
        score = float(w[t[b]] @ v[c[b]])
        expected -= math.log(1 / (1 + math.exp(-score)))
        for n in noise[b]:
            expected -= math.log(1 / (1 + math.exp(float(w[t[b]] @ v[n]))))
    assert model.loss(t, c, noise).item() == pytest.approx(expected / 2, rel=1e-5)


def test_sgns_learns_the_word_classes_and_is_seeded():
    sentences = class_corpus()
    model, losses = train_sgns(sentences, len(VOCABULARY), 16, window=2, epochs=4, lr=0.05, batch_size=256, sample=0)
    assert losses[-1] < losses[0]
    assert separates_the_classes(model.target.weight.detach().numpy())
    again, _ = train_sgns(sentences, len(VOCABULARY), 16, window=2, epochs=4, lr=0.05, batch_size=256, sample=0)
    assert torch.equal(again.target.weight, model.target.weight)


def test_sgns_refuses_no_noise_words():
    with pytest.raises(ValueError, match="negative must be >= 1"):
        train_sgns([[0, 1]], 2, 4, negative=0)


# -- PPMI and SVD -------------------------------------------------------------------------------
def test_ppmi_equals_a_hand_computation_and_drops_non_positive_entries():
    # counts: (0,1)=4, (1,0)=4, (0,2)=1, (2,0)=1, (1,2)=2, (2,1)=2
    rows, cols = torch.tensor([0, 1, 0, 2, 1, 2]), torch.tensor([1, 0, 2, 0, 2, 1])
    counts = torch.tensor([4.0, 4.0, 1.0, 1.0, 2.0, 2.0])
    result = ppmi(Cooccurrences(rows, cols, counts, 3), alpha=1.0)
    word = {0: 5.0, 1: 6.0, 2: 3.0}
    total = 14.0
    expected = {}
    for r, c, n in zip(rows.tolist(), cols.tolist(), counts.tolist(), strict=True):
        pmi = math.log(n * total / (word[r] * word[c]))  # alpha 1: the plain PMI
        if pmi > 0:
            expected[(r, c)] = pmi
    found = {
        (r, c): v for r, c, v in zip(result.rows.tolist(), result.cols.tolist(), result.counts.tolist(), strict=True)
    }
    assert found.keys() == expected.keys()
    for key, value in expected.items():
        assert found[key] == pytest.approx(value, rel=1e-5)


def test_context_smoothing_lowers_the_pmi_of_a_rare_context():
    """P_alpha gives rare contexts more probability, so their PMI (rare words' bias) shrinks."""
    counts = Cooccurrences(torch.tensor([0, 1, 0]), torch.tensor([1, 0, 2]), torch.tensor([9.0, 9.0, 1.0]), 3)

    def pmi_of_rare_context(alpha: float) -> float:
        result = ppmi(counts, alpha)
        return dict(zip(zip(result.rows.tolist(), result.cols.tolist()), result.counts.tolist()))[(0, 2)]

    assert pmi_of_rare_context(1.0) == pytest.approx(math.log(1.9), rel=1e-5)  # 1 * 19 / (10 * 1)
    assert 0 < pmi_of_rare_context(0.75) < pmi_of_rare_context(1.0)


def test_lsa_learns_the_word_classes_with_the_requested_size():
    sentences = class_corpus()
    matrix = ppmi(count_cooccurrences(sentences, len(VOCABULARY), 2, distance_weighting=False))
    vectors = lsa_vectors(matrix, 4)
    assert vectors.shape == (len(VOCABULARY), 4) and vectors.dtype == np.float32
    assert separates_the_classes(vectors)
    with pytest.raises(ValueError, match="dim must be between 1 and"):
        lsa_vectors(matrix, len(VOCABULARY))
