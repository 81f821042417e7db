"""The readers on the real datasets in ``shared/data`` beside the checkout (slow; read-only)."""

from collections import Counter
from pathlib import Path

import pytest

from nmt.data.corpora import read_imdb, read_nsmc, read_sms, read_translation_pairs
from nmt.data.split import grouped_split
from nmt.data.text import fold_for_grouping

pytestmark = pytest.mark.slow

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

if not SHARED_DATA.is_dir():
    pytest.skip(f"real datasets not found at {SHARED_DATA}", allow_module_level=True)


@pytest.fixture(scope="module")
def fra_pairs():
    pairs, report = read_translation_pairs(SHARED_DATA / "fra.txt.xz")
    return pairs, report


def test_fra_reads_every_pair_without_malformed_lines(fra_pairs):
    pairs, report = fra_pairs
    assert len(pairs) == report.n_ok == report.n_lines == 164_265
    assert report.n_malformed == 0
    assert pairs[0] == ("Go.", "Va !")  # the narrow no-break space became a plain space


def test_fra_normalised_text_has_no_exotic_spaces(fra_pairs):
    pairs, _ = fra_pairs
    exotic = set("\u00a0\u202f\u2009\u200b\t")
    assert not any(exotic & set(source + target) for source, target in pairs)


def test_fra_grouped_split_has_no_source_leakage(fra_pairs):
    pairs, _ = fra_pairs
    keys = [fold_for_grouping(source) for source, _ in pairs]
    splits = grouped_split(keys, {"train": 0.96, "dev": 0.02, "test": 0.02}, seed=1234)
    key_sets = {name: {keys[i] for i in indices} for name, indices in splits.items()}
    assert not key_sets["train"] & key_sets["dev"]
    assert not key_sets["train"] & key_sets["test"]
    assert not key_sets["dev"] & key_sets["test"]
    assert sum(map(len, splits.values())) == len(pairs)
    assert abs(len(splits["test"]) - 0.02 * len(pairs)) < 200


def test_imdb_has_the_official_25k_25k_split():
    splits, report = read_imdb(SHARED_DATA / "imdb_reviews.csv.xz")
    assert report.n_malformed == 0
    assert {name: len(rows) for name, rows in splits.items()} == {"train": 25_000, "test": 25_000}
    for rows in splits.values():
        assert Counter(label for _, label in rows) == {0: 12_500, 1: 12_500}
    assert not any("<br" in text.lower() for rows in splits.values() for text, _ in rows)


def test_sms_has_5574_messages_747_spam():
    splits, report = read_sms(SHARED_DATA / "SMSSpamCollection.gz")
    assert report.n_malformed == 0
    assert len(splits["all"]) == 5_574
    assert sum(label for _, label in splits["all"]) == 747


def test_nsmc_has_150k_50k_rows_and_keeps_empty_documents():
    splits, report = read_nsmc(SHARED_DATA / "nsmc_ratings_train.txt.xz", SHARED_DATA / "nsmc_ratings_test.txt.xz")
    assert report.n_malformed == 0
    assert len(splits["train"]) == 150_000 and len(splits["test"]) == 50_000
    assert sum(text == "" for text, _ in splits["train"]) == 5
    assert sum(text == "" for text, _ in splits["test"]) == 3
    assert Counter(label for _, label in splits["train"]) == {0: 75_173, 1: 74_827}
