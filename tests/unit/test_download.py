"""Dataset lookup and download. Offline by construction: only file:// URLs and monkeypatches."""

import dataclasses
import hashlib
import re
import urllib.error
import urllib.request

import pytest

from nmt.data.download import DATASETS, data_dir, download_file, resolve_dataset


@pytest.fixture(autouse=True)
def isolated_data_dir(tmp_path, monkeypatch):
    """Every test gets its own empty data directory; a real ~/.cache/nmt is never seen."""
    directory = tmp_path / "data"
    monkeypatch.setenv("NMT_DATA_DIR", str(directory))
    return directory


@pytest.fixture
def upstream_file(tmp_path):
    """A stand-in for a remote file, reachable through a file:// URL."""
    path = tmp_path / "upstream" / "fra-eng.zip"
    path.parent.mkdir()
    path.write_bytes(b"pretend zip bytes")
    return path


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def use_source(monkeypatch, name, **changes):
    monkeypatch.setitem(DATASETS, name, dataclasses.replace(DATASETS[name], **changes))


# --------------------------------------------------------------------------- data_dir


def test_data_dir_prefers_nmt_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("NMT_DATA_DIR", str(tmp_path / "mine"))
    assert data_dir() == tmp_path / "mine"


def test_data_dir_falls_back_to_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.delenv("NMT_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data_dir() == tmp_path / "cache" / "nmt"


def test_data_dir_falls_back_to_home_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("NMT_DATA_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert data_dir() == tmp_path / ".cache" / "nmt"


# --------------------------------------------------------------------------- registry


def test_registry_lists_every_dataset():
    assert set(DATASETS) == {"fra", "imdb", "sms", "nsmc_train", "nsmc_test", "reuters", "reuters_word_index"}


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_source_is_https_and_finds_its_own_download(name):
    source = DATASETS[name]
    assert source.name == name and source.url.startswith("https://")
    assert source.filename in source.local_names
    assert source.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", source.sha256)


def test_fra_has_no_fixed_checksum_because_upstream_updates_it():
    assert DATASETS["fra"].sha256 is None


def test_sources_are_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        DATASETS["fra"].url = "http://elsewhere"


# --------------------------------------------------------------------------- download_file


def test_download_file_copies_and_verifies(upstream_file, tmp_path):
    dest = tmp_path / "out" / "fra-eng.zip"
    result = download_file(upstream_file.as_uri(), dest, sha256=sha256(b"pretend zip bytes"))
    assert result == dest and dest.read_bytes() == b"pretend zip bytes"
    assert not list(dest.parent.glob("*.part"))


def test_download_file_checksum_mismatch_deletes_and_names_both_hashes(upstream_file, tmp_path):
    dest = tmp_path / "out" / "fra-eng.zip"
    wrong = "0" * 64
    with pytest.raises(ValueError) as error:
        download_file(upstream_file.as_uri(), dest, sha256=wrong)
    assert wrong in str(error.value) and sha256(b"pretend zip bytes") in str(error.value)
    assert not dest.exists() and not list(dest.parent.iterdir())


def test_download_file_sends_a_browser_user_agent(monkeypatch, upstream_file, tmp_path):
    seen = {}
    real_urlopen = urllib.request.urlopen

    def recording_urlopen(request, timeout):
        seen["agent"] = request.get_header("User-agent")
        seen["timeout"] = timeout
        return real_urlopen(request, timeout=timeout)

    monkeypatch.setattr(urllib.request, "urlopen", recording_urlopen)
    download_file(upstream_file.as_uri(), tmp_path / "f")
    assert seen["agent"].startswith("Mozilla/5.0") and seen["timeout"] > 0


def test_download_file_offline_raises_connection_error_with_a_fix(monkeypatch, tmp_path):
    def offline(request, timeout):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    dest = tmp_path / "out" / "f.zip"
    with pytest.raises(ConnectionError, match="offline.*data.path="):
        download_file("https://example.invalid/f.zip", dest)
    assert not list(dest.parent.iterdir())


def test_download_file_missing_remote_file_is_a_connection_error(tmp_path):
    with pytest.raises(ConnectionError):
        download_file((tmp_path / "absent.zip").as_uri(), tmp_path / "f.zip")


# --------------------------------------------------------------------------- resolve_dataset


def test_explicit_path_is_returned_as_is(tmp_path):
    path = tmp_path / "my_fra.txt"
    path.write_text("Go.\tVa !\n")
    assert resolve_dataset("fra", str(path)) == path


def test_missing_explicit_path_is_named_in_the_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="data.path=.*nope.txt does not exist"):
        resolve_dataset("fra", str(tmp_path / "nope.txt"))


def test_local_copies_are_preferred_in_registry_order(isolated_data_dir):
    isolated_data_dir.mkdir()
    (isolated_data_dir / "fra-eng.zip").write_bytes(b"zip")
    assert resolve_dataset("fra", download=False).name == "fra-eng.zip"
    (isolated_data_dir / "fra.txt.xz").write_bytes(b"xz")
    assert resolve_dataset("fra", download=False).name == "fra.txt.xz"


def test_not_found_without_download_names_dataset_directory_url_and_fixes(isolated_data_dir):
    with pytest.raises(FileNotFoundError) as error:
        resolve_dataset("imdb", download=False)
    message = str(error.value)
    expected_parts = ["'imdb'", str(isolated_data_dir), DATASETS["imdb"].url]
    expected_parts += ["data.path=", "NMT_DATA_DIR="]
    for expected in expected_parts:
        assert expected in message


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(KeyError, match="nsmc_train"):
        resolve_dataset("wmt14")


def test_first_download_records_checksum_and_later_use_verifies_it(monkeypatch, upstream_file, isolated_data_dir):
    use_source(monkeypatch, "fra", url=upstream_file.as_uri())
    path = resolve_dataset("fra")
    assert path == isolated_data_dir / "fra-eng.zip"
    sidecar = isolated_data_dir / "fra-eng.zip.sha256"
    assert sidecar.read_text().split()[0] == sha256(b"pretend zip bytes")

    assert resolve_dataset("fra") == path  # unchanged file: accepted without downloading

    path.write_bytes(b"tampered")
    with pytest.raises(ValueError, match="delete it"):
        resolve_dataset("fra")


def test_download_with_known_checksum_is_verified(monkeypatch, upstream_file, isolated_data_dir):
    use_source(monkeypatch, "sms", url=upstream_file.as_uri(), sha256="1" * 64)
    with pytest.raises(ValueError, match="checksum mismatch"):
        resolve_dataset("sms")
    assert not (isolated_data_dir / DATASETS["sms"].filename).exists()


def test_offline_resolve_explains_every_way_to_provide_the_data(monkeypatch):
    def offline(request, timeout):
        raise urllib.error.URLError("Network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(ConnectionError) as error:
        resolve_dataset("nsmc_test")
    message = str(error.value)
    assert "nsmc_test" in message and "Network is unreachable" in message
    assert "data.path=" in message and "NMT_DATA_DIR=" in message and "internet" in message


def test_derived_files_go_to_the_cache_dir_never_the_shared_data_dir(monkeypatch, tmp_path):
    from nmt.data.download import cache_dir, data_dir

    monkeypatch.setenv("NMT_DATA_DIR", str(tmp_path / "shared"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data_dir() == tmp_path / "shared"
    assert cache_dir() == tmp_path / "cache" / "nmt"
