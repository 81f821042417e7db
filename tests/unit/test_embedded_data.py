"""The corpora shipped inside the package, and the lookup that falls back to them offline."""

from __future__ import annotations

import logging

import pytest

from nmt.data.corpora import read_sms, read_translation_pairs
from nmt.data.download import DATASETS, resolve_dataset, sha256_of_file
from nmt.data.embedded import EMBEDDED, EMBEDDED_DIR, embedded_path


@pytest.fixture(autouse=True)
def empty_data_dir(tmp_path, monkeypatch):
    """A data directory with nothing in it: a fresh machine."""
    directory = tmp_path / "data"
    monkeypatch.setenv("NMT_DATA_DIR", str(directory))
    return directory


@pytest.mark.parametrize("name", sorted(EMBEDDED))
def test_the_shipped_files_have_their_recorded_checksums(name):
    assert sha256_of_file(embedded_path(name)) == EMBEDDED[name].sha256


def test_the_attribution_names_each_source_and_licence():
    attribution = (EMBEDDED_DIR / "ATTRIBUTION.md").read_text(encoding="utf-8")
    for name in EMBEDDED:
        assert EMBEDDED[name].filename in attribution
    for expected in ("www.manythings.org/anki and tatoeba.org", "CC BY 2.0 FR", "Almeida", "DocEng", "CC BY 4.0"):
        assert expected in attribution


def test_the_translation_slice_is_short_everyday_pairs():
    pairs, report = read_translation_pairs(embedded_path("fra"))
    assert len(pairs) == 30_000 and report.n_malformed == 0
    assert max(len(english.split()) for english, _ in pairs) <= 8
    assert ("I'm hungry.", "J'ai faim !") in pairs


def test_the_sms_copy_is_the_whole_collection():
    splits, _ = read_sms(embedded_path("sms"))
    labels = [label for _, label in splits["all"]]
    assert len(labels) == 5574 and sum(labels) == 747


def test_an_unknown_name_lists_the_embedded_ones():
    with pytest.raises(KeyError, match="no embedded copy of dataset 'imdb'; embedded: fra, sms"):
        embedded_path("imdb")


@pytest.mark.parametrize("name", sorted(EMBEDDED))
def test_offline_without_a_local_copy_the_shipped_one_is_used_and_logged(name, empty_data_dir, caplog):
    with caplog.at_level(logging.INFO, logger="nmt.data"):
        assert resolve_dataset(name, download=False) == embedded_path(name)
    message = caplog.records[-1].getMessage()
    assert "copy shipped with nmt" in message and str(embedded_path(name)) in message
    assert "data.download=true" in message and str(empty_data_dir) in message  # how to get the full corpus


def test_an_explicit_path_wins_over_the_shipped_copy(tmp_path):
    mine = tmp_path / "mine.txt"
    mine.write_text("Go.\tVa !\n", encoding="utf-8")
    assert resolve_dataset("fra", str(mine), download=False) == mine


def test_a_copy_in_the_data_dir_wins_over_the_shipped_one(empty_data_dir):
    empty_data_dir.mkdir()
    (empty_data_dir / "fra.txt").write_text("Go.\tVa !\n", encoding="utf-8")
    assert resolve_dataset("fra", download=False) == empty_data_dir / "fra.txt"


def test_asking_for_the_download_downloads_instead_of_using_the_shipped_copy(monkeypatch, empty_data_dir):
    fetched = []

    def fake_download(url, dest, sha256=None):
        fetched.append(url)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(b"the full corpus")
        return dest

    monkeypatch.setattr("nmt.data.download.download_file", fake_download)
    assert resolve_dataset("fra", download=True) == empty_data_dir / DATASETS["fra"].filename
    assert fetched == [DATASETS["fra"].url]


def test_the_default_configs_do_not_download(monkeypatch):
    from conftest import compose_config

    for experiment in ("spm_bahdanau", "quickstart", "sms_bilstm_attn", "imdb_bilstm_attn"):
        assert compose_config([f"experiment={experiment}"]).data.download is False, experiment


def test_a_corpus_that_does_not_ship_names_data_download_offline(empty_data_dir):
    with pytest.raises(FileNotFoundError, match=r"data.download is false.*set data.download=true to download it\.$"):
        resolve_dataset("imdb", download=False)
