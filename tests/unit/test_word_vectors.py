"""Queries, intrinsic evaluation and debiasing on vectors built by hand."""

from __future__ import annotations

import numpy as np
import pytest

from nmt.embeddings.debias import debias, direct_bias, equalise, gender_direction, neutralise, projections
from nmt.embeddings.evaluate import analogy_accuracy, gensim_test_file, similarity_correlation
from nmt.embeddings.vectors import WordVectors

pytest.importorskip("gensim")

# axes: 0 = royalty, 1 = gender (+ male), 2 = France, 3 = Germany, 4 = noise
ANALOGY_WORDS = {
    "man": [0, 1, 0, 0, 0.1],
    "woman": [0, -1, 0, 0, 0.1],
    "king": [2, 1, 0, 0, 0],
    "queen": [2, -1, 0, 0, 0],
    "paris": [0, 0, 1, 0, 0.5],
    "france": [0, 0, 1, 0, -0.5],
    "berlin": [0, 0, 0, 1, 0.5],
    "germany": [0, 0, 0, 1, -0.5],
    "apple": [0.2, 0, 0.1, 0.1, 1],
}


def analogy_vectors() -> WordVectors:
    return WordVectors(list(ANALOGY_WORDS), np.array(list(ANALOGY_WORDS.values()), dtype=np.float32))


def test_analogy_and_neighbours():
    vectors = analogy_vectors()
    assert vectors.analogy("man", "king", "woman")[0][0] == "queen"
    assert vectors.analogy("france", "paris", "germany")[0][0] == "berlin"
    found = vectors.most_similar(["king"], topn=3)
    assert "king" not in [w for w, _ in found] and found[0][0] == "queen"
    assert vectors.similarity("king", "king") == pytest.approx(1.0)


def test_restrict_vocab_searches_the_most_frequent_words_only():
    vectors = analogy_vectors()
    assert "queen" not in [w for w, _ in vectors.most_similar(["king"], topn=10, restrict_vocab=3)]
    with pytest.raises(KeyError, match="'emperor' is not in the vocabulary"):
        vectors.most_similar(["emperor"])


def test_most_similar_agrees_with_gensim():
    rng = np.random.default_rng(0)
    vectors = WordVectors([f"w{i}" for i in range(50)], rng.normal(size=(50, 6)))
    ours = vectors.most_similar(["w1", "w2"], ["w3"], topn=5)
    theirs = vectors.to_keyed_vectors().most_similar(["w1", "w2"], ["w3"], topn=5)
    assert [w for w, _ in ours] == [w for w, _ in theirs]
    np.testing.assert_allclose([s for _, s in ours], [s for _, s in theirs], atol=1e-5)


def test_analogy_accuracy_counts_sections_and_coverage(tmp_path):
    questions = tmp_path / "q.txt"
    questions.write_text(
        ": capital-common-countries\nParis France Berlin Germany\nBerlin Germany Paris France\nParis France Rome Italy\n"
        ": family\nman woman king queen\nking queen man paris\n"
        ": gram1\nman king woman queen\n",
        encoding="utf-8",
    )
    result = analogy_accuracy(analogy_vectors(), questions, restrict_vocab=100)
    assert result["questions"] == 6 and result["answered"] == 5  # Rome/Italy unknown
    assert result["correct"] == 4  # "king queen man paris" is wrong
    assert result["coverage"] == pytest.approx(5 / 6)
    assert result["sections"]["capital-common-countries"] == [2, 2]
    assert result["sections"]["family"] == [1, 2]
    assert result["semantic"] == pytest.approx(3 / 4) and result["syntactic"] == pytest.approx(1.0)


def test_similarity_correlation_over_known_pairs(tmp_path):
    pairs = tmp_path / "ws.tsv"
    pairs.write_text(
        "# comment\nking\tqueen\t9\nking\tapple\t1\nparis\tfrance\t8\nman\tberlin\t0.5\nfoo\tbar\t3\n", encoding="utf-8"
    )
    result = similarity_correlation(analogy_vectors(), pairs)
    assert result["pairs"] == 4 and result["oov"] == pytest.approx(0.2)
    assert result["spearman"] > 0.7


def test_similarity_with_no_known_pair_is_none_not_an_error(tmp_path):
    pairs = tmp_path / "ws.tsv"
    pairs.write_text("foo\tbar\t3\n", encoding="utf-8")
    assert similarity_correlation(analogy_vectors(), pairs) == {
        "pearson": None,
        "spearman": None,
        "pairs": 0,
        "oov": 1.0,
    }


def test_gensims_standard_sets_are_found():
    with open(gensim_test_file("questions-words.txt"), encoding="utf-8") as questions:
        assert sum(1 for _ in questions) > 19000
    assert gensim_test_file("wordsim353.tsv").is_file()


def gendered_vectors(seed: int = 0) -> WordVectors:
    """Random vectors plus a shared gender axis: he-side words +g, she-side -g, and
    professions with a bias along g."""
    rng = np.random.default_rng(seed)
    g = np.zeros(16)
    g[0] = 1.0
    words, rows = [], []
    pairs = [("woman", "man"), ("girl", "boy"), ("she", "he"), ("mother", "father"), ("her", "his"), ("queen", "king")]
    for a, b in pairs:
        base = rng.normal(size=16) * 0.3
        base[0] = 0
        words += [a, b]
        rows += [base - g + rng.normal(size=16) * 0.02, base + g + rng.normal(size=16) * 0.02]
    for word, lean in (("nurse", -0.6), ("engineer", 0.7), ("doctor", 0.3), ("table", 0.0)):
        row = rng.normal(size=16) * 0.5
        row[0] = lean
        words.append(word)
        rows.append(row)
    return WordVectors(words, np.array(rows))


def test_gender_direction_is_the_shared_axis_with_he_positive():
    vectors = gendered_vectors()
    direction = gender_direction(vectors)
    assert abs(direction[0]) > 0.99 and direction[0] > 0
    nurse, engineer = projections(vectors, ["nurse", "engineer"], direction)
    assert nurse < -0.2 and engineer > 0.2


def test_debias_removes_the_projection_of_neutral_words_and_equalises_pairs():
    vectors = gendered_vectors()
    direction = gender_direction(vectors)
    neutral = ["nurse", "engineer", "doctor", "table"]
    before = direct_bias(vectors, neutral, direction)
    debiased, report = debias(vectors)
    assert before > 0.1
    assert direct_bias(debiased, neutral, direction) < 1e-6
    assert report["neutralised"] == 4 and report["equalised"] == 6
    np.testing.assert_allclose(np.linalg.norm(debiased.vectors, axis=1), 1.0, atol=1e-6)
    for word in neutral:  # equalised pairs are equidistant from every neutral word
        assert debiased.similarity(word, "king") == pytest.approx(debiased.similarity(word, "queen"), abs=1e-6)
        assert debiased.similarity(word, "he") == pytest.approx(debiased.similarity(word, "she"), abs=1e-6)
    # the pairs keep their gender difference
    assert projections(debiased, ["he"], direction)[0] > 0.5 > -0.5 > projections(debiased, ["she"], direction)[0]


def test_neutralise_and_equalise_formulas():
    g = np.array([1.0, 0, 0])
    w = neutralise(np.array([[0.6, 0.8, 0.0]]), g)
    np.testing.assert_allclose(w, [[0, 1, 0]])
    a, b = equalise(np.array([0.8, 0.6, 0.0]), np.array([-0.6, 0.0, 0.8]), g)
    np.testing.assert_allclose(a[1:], b[1:])  # same neutral part
    assert a @ g == pytest.approx(-(b @ g))
    assert np.linalg.norm(a) == pytest.approx(1.0) and np.linalg.norm(b) == pytest.approx(1.0)


def test_gender_direction_needs_definitional_pairs():
    vectors = WordVectors(["a", "b", "he", "she"], np.eye(4))
    with pytest.raises(ValueError, match="at least 2 definitional pairs"):
        gender_direction(vectors)
