"""Grouped and stratified splits: no leakage, determinism, sizes, and the split cache."""

import json
import logging
import random
from collections import Counter

import pytest

from nmt.data.split import cached_grouped_split, grouped_split, stratified_split
from nmt.data.text import fold_for_grouping

FRACTIONS = {"train": 0.8, "dev": 0.1, "test": 0.1}


def synthetic_sources(n_groups=300, seed=0):
    """Sources with Tatoeba-like near-duplicates: several spellings per underlying sentence."""
    rng = random.Random(seed)
    sources = []
    for group in range(n_groups):
        for _ in range(rng.randint(1, 4)):
            sentence = f"sentence number {group}"
            spellings = [sentence.capitalize() + ".", sentence + "!", sentence.upper() + " ?"]
            variant = rng.choice(spellings)
            sources.append(variant)
    return sources


SOURCES = synthetic_sources()
KEYS = [fold_for_grouping(source) for source in SOURCES]


def split_of_each_key(splits, keys):
    owner = {}
    for name, indices in splits.items():
        for index in indices:
            owner.setdefault(keys[index], set()).add(name)
    return owner


def test_no_fold_key_appears_in_two_splits():
    splits = grouped_split(KEYS, FRACTIONS, seed=1)
    assert all(len(names) == 1 for names in split_of_each_key(splits, KEYS).values())


def test_every_item_is_in_exactly_one_split_and_lists_are_sorted():
    splits = grouped_split(KEYS, FRACTIONS, seed=1)
    assert sorted(i for indices in splits.values() for i in indices) == list(range(len(KEYS)))
    assert all(indices == sorted(indices) for indices in splits.values())
    assert list(splits) == list(FRACTIONS)


def test_split_sizes_are_within_one_group_of_target():
    splits = grouped_split(KEYS, FRACTIONS, seed=1)
    largest_group = max(Counter(KEYS).values())
    for name, fraction in FRACTIONS.items():
        assert abs(len(splits[name]) - fraction * len(KEYS)) <= largest_group


def test_same_seed_gives_the_same_split():
    first = grouped_split(KEYS, FRACTIONS, seed=7)
    assert grouped_split(list(KEYS), dict(FRACTIONS), seed=7) == first


def test_different_seeds_give_different_splits():
    assert grouped_split(KEYS, FRACTIONS, seed=1) != grouped_split(KEYS, FRACTIONS, seed=2)


def test_group_assignment_does_not_depend_on_input_order():
    order = list(range(len(KEYS)))
    random.Random(3).shuffle(order)
    shuffled_keys = [KEYS[i] for i in order]
    shuffled_splits = grouped_split(shuffled_keys, FRACTIONS, seed=5)
    original_owner = split_of_each_key(grouped_split(KEYS, FRACTIONS, seed=5), KEYS)
    assert split_of_each_key(shuffled_splits, shuffled_keys) == original_owner


def test_zero_fraction_split_is_empty():
    splits = grouped_split(KEYS, {"train": 0.9, "dev": 0.0, "test": 0.1}, seed=1)
    assert splits["dev"] == []


@pytest.mark.parametrize("fractions", [{"train": 0.9, "test": 0.2}, {"train": 1.1, "test": -0.1}, {}])
def test_invalid_fractions_are_rejected(fractions):
    with pytest.raises(ValueError, match="fractions"):
        grouped_split(KEYS, fractions, seed=1)


def test_fractions_within_rounding_tolerance_are_accepted():
    grouped_split(KEYS, {"train": 0.96, "dev": 0.02, "test": 0.02 + 5e-7}, seed=1)


# --------------------------------------------------------------------------- cache


def test_cache_round_trip_returns_the_same_split_without_recomputing(tmp_path, monkeypatch):
    first = cached_grouped_split(KEYS, FRACTIONS, 1, tmp_path)
    assert len(list(tmp_path.glob("*.json"))) == 1

    def must_not_run(*args, **kwargs):
        raise AssertionError("split recomputed despite a valid cache")

    monkeypatch.setattr("nmt.data.split.grouped_split", must_not_run)
    assert cached_grouped_split(KEYS, FRACTIONS, 1, tmp_path) == first


def test_cache_is_not_reused_for_another_seed_corpus_or_fractions(tmp_path):
    cached_grouped_split(KEYS, FRACTIONS, 1, tmp_path)
    other_seed = cached_grouped_split(KEYS, FRACTIONS, 2, tmp_path)
    assert other_seed == grouped_split(KEYS, FRACTIONS, 2)
    other_corpus = KEYS[:-1]
    expected = grouped_split(other_corpus, FRACTIONS, 1)
    assert cached_grouped_split(other_corpus, FRACTIONS, 1, tmp_path) == expected
    other_fractions = {"train": 0.5, "dev": 0.25, "test": 0.25}
    expected = grouped_split(KEYS, other_fractions, 1)
    assert cached_grouped_split(KEYS, other_fractions, 1, tmp_path) == expected
    assert len(list(tmp_path.glob("*.json"))) == 4


@pytest.mark.parametrize(
    "corruption",
    [
        "{not json",
        json.dumps({"splits": {"train": [0], "dev": [], "test": []}}),  # does not cover the corpus
        json.dumps([1, 2, 3]),
    ],
)
def test_corrupt_cache_is_recomputed_with_a_warning(tmp_path, caplog, corruption):
    expected = cached_grouped_split(KEYS, FRACTIONS, 1, tmp_path)
    (cache_file,) = tmp_path.glob("*.json")
    cache_file.write_text(corruption)
    with caplog.at_level(logging.WARNING, logger="nmt.data"):
        assert cached_grouped_split(KEYS, FRACTIONS, 1, tmp_path) == expected
    assert "corrupt" in caplog.text
    assert json.loads(cache_file.read_text())["splits"] == expected  # repaired


def test_no_cache_dir_means_no_files(tmp_path):
    assert cached_grouped_split(KEYS, FRACTIONS, 1, None) == grouped_split(KEYS, FRACTIONS, 1)


# --------------------------------------------------------------------------- stratified


def test_stratified_split_keeps_label_proportions():
    labels = [1] * 130 + [0] * 870  # 13% spam, like the SMS collection
    splits = stratified_split(labels, FRACTIONS, seed=3)
    assert sorted(i for s in splits.values() for i in s) == list(range(1000))
    for name, fraction in FRACTIONS.items():
        spam = sum(labels[i] for i in splits[name])
        assert abs(spam - 130 * fraction) <= 1
        assert abs(len(splits[name]) - 1000 * fraction) <= 2


def test_stratified_split_is_deterministic_and_seed_dependent():
    labels = [i % 3 for i in range(300)]
    assert stratified_split(labels, FRACTIONS, 1) == stratified_split(labels, FRACTIONS, 1)
    assert stratified_split(labels, FRACTIONS, 1) != stratified_split(labels, FRACTIONS, 2)


def test_stratified_split_lists_are_sorted():
    splits = stratified_split([0, 1] * 50, FRACTIONS, seed=0)
    assert all(indices == sorted(indices) for indices in splits.values())


def test_unwritable_cache_dir_still_returns_the_split(tmp_path, caplog):
    from nmt.data.split import cached_grouped_split, grouped_split

    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")  # mkdir below it fails, even for root
    keys = [f"k{i % 7}" for i in range(50)]
    fractions = {"train": 0.8, "dev": 0.1, "test": 0.1}
    result = cached_grouped_split(keys, fractions, 1, blocker / "splits")
    assert result == grouped_split(keys, fractions, 1)
    assert "cannot cache the split" in caplog.text
