"""Where datasets live on disk, and how they get there: local lookup first, then a download when
asked for, else the small copy shipped with nmt (``nmt.data.embedded``).

Only the standard library is used (urllib), so nothing extra has to be installed to fetch data.
Every download is checked against a sha256: a published one where the upstream file is fixed,
otherwise the hash of the first download, recorded beside the file (trust on first use).
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from nmt.data.embedded import EMBEDDED, embedded_path

__all__ = [
    "DatasetSource",
    "DATASETS",
    "data_dir",
    "resolve_dataset",
    "resolve_source",
    "resolve_pairs",
    "pair_source",
    "download_file",
    "sha256_of_file",
]

logger = logging.getLogger("nmt.data")

# manythings.org answers 403 to urllib's default "Python-urllib/3.x" agent.
BROWSER_USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
DOWNLOAD_TIMEOUT_S = 60.0  # per socket operation, not for the whole transfer
_CHUNK_BYTES = 1 << 20
# What urlopen raises when the network, DNS or server fails (HTTPError is handled before).
_NETWORK_ERRORS = (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException)
CHECKSUM_SIDECAR_SUFFIX = ".sha256"
MANYTHINGS_URL = "https://www.manythings.org/anki"
_FORMAT_CHECK_LINES = 100  # lines of a downloaded pair file whose format is checked


@dataclass(frozen=True)
class DatasetSource:
    """Where one dataset comes from and which local copies stand in for it.

    :param name: registry key, e.g. ``"fra"``.
    :param url: upstream download address.
    :param filename: name the download is saved under in ``data_dir()``.
    :param sha256: expected sha256 of the downloaded file, or None when upstream changes the
        file over time; then the first download's hash is recorded in ``<filename>.sha256``
        and every later use is checked against it (trust on first use).
    :param local_names: names looked up in ``data_dir()`` before downloading, in order of
        preference (compressed project copies first, the raw download last).
    """

    name: str
    url: str
    filename: str
    sha256: str | None
    local_names: tuple[str, ...]
    expected_member: str | None = None
    """A manythings.org pair zip's corpus member (``deu.txt``): a download is checked to hold
    it in the pair format, and a later change of the file is warned about, not refused,
    since upstream rebuilds the zip."""


DATASETS: dict[str, DatasetSource] = {
    source.name: source
    for source in (
        # manythings.org re-exports Tatoeba from time to time under the same URL, so no fixed
        # hash exists: trust on first use.
        DatasetSource(
            name="fra",
            url="https://www.manythings.org/anki/fra-eng.zip",
            filename="fra-eng.zip",
            sha256=None,
            local_names=("fra.txt.xz", "fra.txt", "fra.txt.gz", "fra-eng.zip"),
        ),
        # Published hash of aclImdb v1.0 (used by several dataset loaders, e.g. Julia's
        # MLDatasets/DataDeps registration and Rust/Go IMDB loaders).
        DatasetSource(
            name="imdb",
            url="https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
            filename="aclImdb_v1.tar.gz",
            sha256="c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe",
            local_names=("imdb_reviews.csv.xz", "imdb_reviews.csv", "aclImdb_v1.tar.gz", "aclImdb"),
        ),
        # Hash of the UCI zip as pinned by several independent projects (also valid for the
        # older smsspamcollection.zip address, which serves the same bytes).
        DatasetSource(
            name="sms",
            url="https://archive.ics.uci.edu/static/public/228/sms+spam+collection.zip",
            filename="sms+spam+collection.zip",
            sha256="1587ea43e58e82b14ff1f5425c88e17f8496bfcdb67a583dbff9eefaf9963ce3",
            local_names=("SMSSpamCollection.gz", "SMSSpamCollection", "sms+spam+collection.zip"),
        ),
        # NSMC v1.0 at commit cc0670e8 (2016); shared/data/PROVENANCE.md verified these hashes
        # against the git blob ids of e9t/nsmc.
        DatasetSource(
            name="nsmc_train",
            url="https://raw.githubusercontent.com/e9t/nsmc/master/ratings_train.txt",
            filename="nsmc_ratings_train.txt",
            sha256="e03b7d14e9e41be8d464a28057cd25d7396c53e67aa7fd5f7e552c59b0ee2940",
            local_names=(
                "nsmc_ratings_train.txt.xz",
                "nsmc_ratings_train.txt",
                "ratings_train.txt",
            ),
        ),
        # Keras's copies of the Reuters newswire topics; the npz hash is the sha256 Keras
        # itself pins (keras/src/datasets/reuters.py). Keras pins the word index by md5 only,
        # so it is trusted on first use here.
        DatasetSource(
            name="reuters",
            url="https://storage.googleapis.com/tensorflow/tf-keras-datasets/reuters.npz",
            filename="reuters.npz",
            sha256="d6586e694ee56d7a4e65172e12b3e987c03096cb01eab99753921ef915959916",
            local_names=("reuters.npz",),
        ),
        DatasetSource(
            name="reuters_word_index",
            url="https://storage.googleapis.com/tensorflow/tf-keras-datasets/reuters_word_index.json",
            filename="reuters_word_index.json",
            sha256=None,
            local_names=("reuters_word_index.json",),
        ),
        DatasetSource(
            name="nsmc_test",
            url="https://raw.githubusercontent.com/e9t/nsmc/master/ratings_test.txt",
            filename="nsmc_ratings_test.txt",
            sha256="8ac9f64052f11dbf6ae0acb5e038f03d90a76f0eda7820cfb3a92d02edfcebda",
            local_names=("nsmc_ratings_test.txt.xz", "nsmc_ratings_test.txt", "ratings_test.txt"),
        ),
    )
}


def cache_dir() -> Path:
    """Where nmt keeps what it derives from data (e.g. splits): ``$XDG_CACHE_HOME/nmt``,
    else ``~/.cache/nmt``. Never the data dir, which may be shared or read-only."""
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home).expanduser() / "nmt"


def data_dir() -> Path:
    """``$NMT_DATA_DIR`` if set, else :func:`cache_dir`."""
    if os.environ.get("NMT_DATA_DIR"):
        return Path(os.environ["NMT_DATA_DIR"]).expanduser()
    return cache_dir()


def pair_source(language: str) -> DatasetSource:
    """The manythings.org English-``language`` pair file (ISO 639-3: ``fra``, ``deu``, ``spa``).

    ``fra`` is the registered :data:`DATASETS` entry; any other code gets the same layout:
    ``https://www.manythings.org/anki/{language}-eng.zip`` holding ``{language}.txt``, looked
    up in the data dir as ``{language}.txt.xz``, ``.txt``, ``.txt.gz`` or the zip.
    """
    if not re.fullmatch(r"[a-z]{3}", language):
        raise ValueError(
            f"data.language={language!r} is not a manythings.org language code: use the three "
            f"letters of its pair file, e.g. data.language=deu for deu-eng.zip"
        )
    if language in DATASETS:
        return DATASETS[language]
    return DatasetSource(
        name=language,
        url=f"{MANYTHINGS_URL}/{language}-eng.zip",
        filename=f"{language}-eng.zip",
        sha256=None,
        local_names=(f"{language}.txt.xz", f"{language}.txt", f"{language}.txt.gz", f"{language}-eng.zip"),
        expected_member=f"{language}.txt",
    )


def resolve_pairs(language: str, path: str | None = None, *, download: bool = False) -> Path:
    """The local path of the English-``language`` pairs (:func:`pair_source`), found or
    downloaded in :func:`resolve_dataset`'s order."""
    return resolve_source(pair_source(language), path, download=download)


def resolve_dataset(name: str, path: str | None = None, *, download: bool = True) -> Path:
    """The local path of dataset ``name``.

    Order: an explicit ``path`` (must exist; never downloaded over), then each of the
    dataset's ``local_names`` in ``data_dir()``, then a download into ``data_dir()`` when
    ``download`` is true, else the copy shipped with nmt where there is one (logged, with how
    to get the full corpus).
    A file found under the download's own name is checked against the known sha256 or its
    trust-on-first-use sidecar; other local names (e.g. the project's ``.xz`` copies) have
    no reference hash and are used as they are.
    """
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(DATASETS))}")
    return resolve_source(DATASETS[name], path, download=download)


def resolve_source(source: DatasetSource, path: str | None = None, *, download: bool = True) -> Path:
    """:func:`resolve_dataset` for a source that need not be registered (:func:`pair_source`)."""
    name = source.name
    if path is not None:
        explicit = Path(path).expanduser()
        if not explicit.exists():
            raise FileNotFoundError(
                f"dataset {name!r}: data.path={path} does not exist. Fix the path, or drop "
                f"data.path to look in the data directory ({data_dir()}) and download from "
                f"{source.url}."
            )
        return explicit

    directory = data_dir()
    for local_name in source.local_names:
        candidate = directory / local_name
        if candidate.exists():
            if local_name == source.filename:
                _verify_download(candidate, source)
            return candidate

    if not download:
        if name in EMBEDDED:
            return _embedded_copy(source, directory)
        fix = "set data.download=true to download it"
        raise FileNotFoundError(_not_found_message(source, directory, "data.download is false", fix))
    target = directory / source.filename
    logger.info("downloading dataset %r from %s to %s", name, source.url, target)
    try:
        download_file(source.url, target, sha256=source.sha256)
        if source.expected_member is not None:
            _check_pair_zip(target, source.expected_member)
    except ConnectionError as error:
        # The cause (e.g. "HTTP Error 403" or "Name or service not known") is the useful part.
        why = str(error.__cause__ or error)
        fix = "connect to the internet so it can be downloaded"
        raise ConnectionError(_not_found_message(source, directory, why, fix)) from error
    if source.sha256 is None:
        digest = sha256_of_file(target)
        _sidecar(target).write_text(f"{digest}  {target.name}\n", encoding="utf-8")
        if source.expected_member is not None:
            logger.info(
                "dataset %r: %s has no published checksum (manythings.org rebuilds its zips); checked: "
                "the zip's CRCs, its member %s and the English<TAB>%s line format; sha256 %s recorded in %s",
                name,
                target.name,
                source.expected_member,
                name,
                digest,
                _sidecar(target).name,
            )
    return target


def _embedded_copy(source: DatasetSource, directory: Path) -> Path:
    path = embedded_path(source.name)
    logger.info(
        "dataset %r: using the copy shipped with nmt, %s (%s). For the full corpus set "
        "data.download=true, or data.path=/path/to/%s, or put it in NMT_DATA_DIR (now %s).",
        source.name,
        path,
        EMBEDDED[source.name].contents,
        source.filename,
        directory,
    )
    return path


def _not_found_message(source: DatasetSource, directory: Path, why_not_downloaded: str, download_fix: str) -> str:
    return (
        f"dataset {source.name!r} not found. Searched {directory} for "
        f"{', '.join(source.local_names)}; not downloaded from {source.url} "
        f"({why_not_downloaded}). Fix: set data.path=/path/to/{source.local_names[0]}, or put "
        f"the file in a directory and set NMT_DATA_DIR=that/directory, or {download_fix}."
    )


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + CHECKSUM_SIDECAR_SUFFIX)


def _verify_download(path: Path, source: DatasetSource) -> None:
    """Check a previously downloaded file against the known hash or its first-use sidecar."""
    sidecar = _sidecar(path)
    if source.sha256 is not None:
        expected = source.sha256
    elif sidecar.exists():
        expected = sidecar.read_text(encoding="utf-8").split()[0]
    else:
        return  # placed there by hand, never downloaded by us: nothing to compare with
    if path.is_dir():
        return
    actual = sha256_of_file(path)
    if actual != expected and source.expected_member is not None:
        logger.warning(
            "dataset %r: %s has sha256 %s, not the %s recorded in %s when it was downloaded: the file "
            "changed (manythings.org rebuilds its zips), so results may not compare with earlier runs. "
            "Delete %s to accept the new file.",
            source.name,
            path,
            actual,
            expected,
            sidecar.name,
            sidecar.name,
        )
    elif actual != expected:
        raise ValueError(
            f"dataset {source.name!r}: {path} has sha256 {actual}, expected {expected}. The "
            f"file is damaged or was replaced; delete it (and {sidecar.name} if present) to "
            f"download it again."
        )


def sha256_of_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def download_file(
    url: str, dest: str | Path, sha256: str | None = None, *, timeout: float = DOWNLOAD_TIMEOUT_S
) -> Path:
    """Download ``url`` to ``dest`` atomically and, if given, check its sha256.

    The bytes go to ``<dest>.<pid>.part`` first and are renamed into place only once complete
    and verified, so an interrupted or concurrent download never leaves a truncated ``dest``.

    :raises ConnectionError: the server could not be reached or refused the request.
    :raises ValueError: the downloaded bytes do not match ``sha256`` (the file is deleted).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f"{dest.name}.{os.getpid()}.part")
    request = urllib.request.Request(url, headers={"User-Agent": BROWSER_USER_AGENT})
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, open(partial, "wb") as out:
            while chunk := response.read(_CHUNK_BYTES):
                digest.update(chunk)
                out.write(chunk)
    except urllib.error.HTTPError as error:
        partial.unlink(missing_ok=True)
        raise ConnectionError(f"{url} answered HTTP {error.code} {error.reason}") from error
    except _NETWORK_ERRORS as error:
        partial.unlink(missing_ok=True)
        reason = getattr(error, "reason", error)
        raise ConnectionError(
            f"could not download {url} ({reason}); are you offline? Download it by hand and "
            f"point to it with data.path=..., or put it in NMT_DATA_DIR={data_dir()}."
        ) from error
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    actual = digest.hexdigest()
    if sha256 is not None and actual != sha256.lower():
        partial.unlink(missing_ok=True)
        raise ValueError(
            f"checksum mismatch for {url}: expected sha256 {sha256}, got {actual}. The download "
            f"was corrupted or the file changed upstream; the partial file was deleted, try again."
        )
    os.replace(partial, dest)
    return dest


def _check_pair_zip(path: Path, member: str) -> None:
    """A downloaded manythings.org zip is whole, holds ``member`` and its first lines read
    ``English<TAB>other[<TAB>attribution]``; otherwise it is deleted and a ValueError says why."""
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
            names = {name.rsplit("/", 1)[-1]: name for name in archive.namelist()}
            if damaged is not None:
                problem = f"member {damaged} fails its CRC check"
            elif member not in names:
                problem = f"it holds no {member} (members: {', '.join(sorted(names)) or 'none'})"
            else:
                with archive.open(names[member]) as stream:
                    problem = _pair_format_problem(stream.readlines(1 << 16)[:_FORMAT_CHECK_LINES], member)
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        problem = f"it is not a readable zip file ({error})"
    if problem:
        path.unlink(missing_ok=True)
        raise ValueError(
            f"the download {path.name} is unusable: {problem}. It was deleted; try again later, or "
            f"download it by hand and pass the {member} inside with data.path=..."
        )


def _pair_format_problem(lines: list[bytes], member: str) -> str:
    if not lines:
        return f"{member} is empty"
    # A few malformed lines are the reader's to count and skip; a file where most lack the TAB
    # is not a pair file at all (an error page, another format).
    with_tab = sum(b"\t" in line for line in lines)
    if 2 * with_tab <= len(lines):
        return f"{len(lines) - with_tab} of its first {len(lines)} lines of {member} have no TAB (expected English<TAB>translation)"
    return ""
