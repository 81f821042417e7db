"""Any manythings.org pair file (data=tatoeba data.language=...): reading, lookup and download.

Offline: downloads go through a mocked ``urlopen`` that serves a zip the test builds."""

from __future__ import annotations

import io
import logging
import urllib.request
import zipfile

import pytest
from omegaconf import OmegaConf

from nmt.data.corpora import read_translation_pairs
from nmt.data.download import pair_source, resolve_pairs, sha256_of_file
from nmt.data.translation_datamodule import TranslationDataModule
from tests.conftest import compose_config

ATTRIBUTION = "CC-BY 2.0 (France) Attribution: tatoeba.org #1 (CM) & #2 (Pfirsichbaeumchen)"
GOOD_LINES = [
    f"Hi.\tHallo!\t{ATTRIBUTION}",
    f"Run!\tLauf!\t{ATTRIBUTION}",
    f"I am here.\tIch bin hier.\t{ATTRIBUTION}",
    f"Who won?\tWer hat gewonnen?\t{ATTRIBUTION}",
]
PAIR_FILE = "\n".join([*GOOD_LINES[:2], "no tab on this line", "", "\tNur Deutsch", *GOOD_LINES[2:]]) + "\n"


@pytest.fixture(autouse=True)
def isolated_data_dir(tmp_path, monkeypatch):
    directory = tmp_path / "data"
    monkeypatch.setenv("NMT_DATA_DIR", str(directory))
    return directory


def pair_zip(members: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def serve(monkeypatch, payload: bytes) -> list[str]:
    """Make ``urlopen`` answer every request with ``payload``; returns the URLs asked for."""
    asked: list[str] = []

    def fake_urlopen(request, timeout):
        asked.append(request.full_url)
        return io.BytesIO(payload)

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    return asked


# --------------------------------------------------------------------------- reading


def test_a_pair_file_drops_the_attribution_and_counts_malformed_lines(tmp_path):
    path = tmp_path / "deu.txt"
    path.write_text(PAIR_FILE, encoding="utf-8")
    pairs, report = read_translation_pairs(path)
    assert pairs == [
        ("Hi.", "Hallo!"),
        ("Run!", "Lauf!"),
        ("I am here.", "Ich bin hier."),
        ("Who won?", "Wer hat gewonnen?"),
    ]
    assert report.malformed == {"no tab": 1, "empty line": 1, "empty source": 1}
    assert report.n_lines == 7 and report.n_ok == 4


def test_data_tatoeba_reads_any_language_and_reverse_puts_it_first(tmp_path, isolated_data_dir):
    isolated_data_dir.mkdir()
    (isolated_data_dir / "deu-eng.zip").write_bytes(pair_zip({"deu.txt": PAIR_FILE, "_about.txt": "about"}))
    overrides = ["data=tatoeba", "data.language=deu", "data.split_cache=null", "data.split.train=1.0"]
    overrides += ["data.split.dev=0.0", "data.split.test=0.0"]
    for reverse in (False, True):
        data = OmegaConf.to_container(compose_config([*overrides, f"data.reverse={reverse}"]).data, resolve=True)
        train = TranslationDataModule(data).prepare_corpus()["train"]
        expected = [
            ("Hi.", "Hallo!"),
            ("Run!", "Lauf!"),
            ("I am here.", "Ich bin hier."),
            ("Who won?", "Wer hat gewonnen?"),
        ]
        assert train == ([(de, en) for en, de in expected] if reverse else expected)


def test_a_language_with_no_file_is_a_one_line_error_saying_how_to_get_it(isolated_data_dir):
    with pytest.raises(FileNotFoundError) as error:
        resolve_pairs("spa")
    message = str(error.value)
    assert "\n" not in message
    for fragment in ("'spa'", "spa.txt.xz", "spa-eng.zip", "https://www.manythings.org/anki/spa-eng.zip"):
        assert fragment in message
    assert "data.download=true" in message and "data.path=" in message and "NMT_DATA_DIR=" in message


def test_a_language_code_that_is_not_three_letters_is_refused():
    with pytest.raises(ValueError, match="data.language=deu"):
        pair_source("german")


def test_fra_keeps_its_registered_source_and_shipped_sample(isolated_data_dir):
    assert pair_source("fra").expected_member is None  # the registered entry, its checks unchanged
    assert resolve_pairs("fra").name == "fra-sample.txt.xz"


# --------------------------------------------------------------------------- download


def test_download_checks_the_zip_and_records_its_sha256(monkeypatch, isolated_data_dir, caplog):
    asked = serve(monkeypatch, pair_zip({"deu.txt": PAIR_FILE, "_about.txt": "about"}))
    with caplog.at_level(logging.INFO, logger="nmt.data"):
        path = resolve_pairs("deu", download=True)
    assert asked == ["https://www.manythings.org/anki/deu-eng.zip"]
    assert path == isolated_data_dir / "deu-eng.zip"
    sidecar = isolated_data_dir / "deu-eng.zip.sha256"
    assert sidecar.read_text().split()[0] == sha256_of_file(path)
    assert "deu.txt" in caplog.text and "CRC" in caplog.text and "no published checksum" in caplog.text
    assert read_translation_pairs(path)[0][0] == ("Hi.", "Hallo!")
    # A second run finds the file and downloads nothing.
    asked.clear()
    assert resolve_pairs("deu", download=True) == path and asked == []


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b"<html>Too many requests</html>", "not a readable zip"),
        (pair_zip({"ita.txt": PAIR_FILE}), "holds no deu.txt"),
        (pair_zip({"deu.txt": "Hi. Hallo!\n"}), "1 of its first 1 lines of deu.txt have no TAB"),
        (pair_zip({"deu.txt": ""}), "deu.txt is empty"),
    ],
    ids=["not-a-zip", "missing-member", "wrong-format", "empty-member"],
)
def test_an_unusable_download_is_deleted_with_the_reason(monkeypatch, isolated_data_dir, payload, fragment):
    serve(monkeypatch, payload)
    with pytest.raises(ValueError, match=fragment):
        resolve_pairs("deu", download=True)
    assert not (isolated_data_dir / "deu-eng.zip").exists()
    assert not (isolated_data_dir / "deu-eng.zip.sha256").exists()


def test_a_corrupted_zip_member_fails_its_crc_check(monkeypatch, isolated_data_dir):
    good = bytearray(pair_zip({"deu.txt": PAIR_FILE * 50}))
    start = good.index(b"deu.txt") + len(b"deu.txt") + 20  # inside the first member's compressed bytes
    good[start] ^= 0xFF
    serve(monkeypatch, bytes(good))
    with pytest.raises(ValueError, match="unusable") as error:
        resolve_pairs("deu", download=True)
    assert "\n" not in str(error.value)
    assert not (isolated_data_dir / "deu-eng.zip").exists()


def test_a_changed_file_is_warned_about_not_refused(monkeypatch, isolated_data_dir, caplog):
    serve(monkeypatch, pair_zip({"deu.txt": PAIR_FILE}))
    path = resolve_pairs("deu", download=True)
    recorded = (isolated_data_dir / "deu-eng.zip.sha256").read_text().split()[0]
    path.write_bytes(pair_zip({"deu.txt": PAIR_FILE + f"Go.\tGeh.\t{ATTRIBUTION}\n"}))  # upstream rebuilt it
    with caplog.at_level(logging.WARNING, logger="nmt.data"):
        assert resolve_pairs("deu") == path
    assert recorded in caplog.text and sha256_of_file(path) in caplog.text and "changed" in caplog.text
