"""Word-vector files in the field's standard formats.

| format | what | first line | entries |
|---|---|---|---|
| ``word2vec`` | word2vec text (Mikolov's ``-binary 0``) | ``<count> <dim>`` | ``word v1 ... vd`` |
| ``fasttext`` | fastText ``.vec``: the same text format | ``<count> <dim>`` | ``word v1 ... vd`` |
| ``glove`` | GloVe text | (none) | ``word v1 ... vd`` |
| ``word2vec_binary`` | word2vec binary (``-binary 1``) | ``<count> <dim>`` | ``word<space>`` + dim little-endian float32 (+ ``\\n``) |
| ``fasttext_bin`` | fastText's whole model (``.bin``: words and character n-grams) | magic number | read (and written) through gensim |

:func:`read_vectors` recognises the format from the file itself (``format="auto"``): the
fastText magic number, then a ``count dim`` header (binary when NUL bytes follow it), else
GloVe text. Text files may be gzip-compressed (``.gz``). A malformed file raises
:class:`VectorFileError`, one line naming the file, the line (or entry) and the fix.
Words that contain spaces (some GloVe releases have them) are read from text files whose
dimension is known (from the header, or from the first line of a GloVe file): the last
``dim`` fields are the vector.
"""

from __future__ import annotations

import gzip
import logging
import math
import re
import struct
from collections.abc import Container, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, cast

import numpy as np

from nmt.config.schema import VectorFormat, choices
from nmt.embeddings.vectors import WordVectors

log = logging.getLogger("nmt.embeddings")

FORMATS = choices(VectorFormat)
TEXT_FORMATS = ("word2vec", "fasttext", "glove")
FASTTEXT_MAGIC = 793712314  # first int32 of a fastText .bin model
SUFFIXES = {  # file name ending the trainer gives each format
    "word2vec": ".w2v.txt",
    "word2vec_binary": ".w2v.bin",
    "glove": ".glove.txt",
    "fasttext": ".vec",
    "fasttext_bin": ".fasttext.bin",
}
_HEADER = re.compile(rb"^\s*(\d+)\s+(\d+)\s*$")


class VectorFileError(ValueError):
    """A vector file that cannot be read as asked; the message names the place and the fix."""


class SubwordVectors(WordVectors):
    """Vectors of a fastText ``.bin`` model: also a vector for any word, from its character
    n-grams (:meth:`vector_for`), through the gensim model kept in :attr:`keyed`."""

    keyed: Any = None

    def vector_for(self, word: str) -> np.ndarray | None:
        """The word's vector, or one built from its n-grams; None if it has none of them."""
        if word in self:
            return self[word]
        try:
            vector = self.keyed.get_vector(word)
        except KeyError:
            return None
        return np.asarray(vector, dtype=np.float32) if np.any(vector) else None


def _open(path: Path) -> IO[bytes]:
    return cast(IO[bytes], gzip.open(path, "rb")) if path.suffix == ".gz" else open(path, "rb")


def detect_format(path: str | Path) -> str:
    """The format of ``path`` from its content (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise VectorFileError(f"vector file not found: {path}")
    with _open(path) as handle:
        first = handle.readline(1 << 20)
        if len(first) >= 4 and struct.unpack("<i", first[:4])[0] == FASTTEXT_MAGIC:
            return "fasttext_bin"
        header = _HEADER.match(first)
        if header:
            dim = int(header.group(2))
            return "word2vec" if _is_text_entry(handle.readline(4 * dim + (1 << 16)), dim) else "word2vec_binary"
    if not first.strip():
        raise VectorFileError(f"{path} is empty or starts with an empty line: not a word-vector file")
    return "glove"


def _is_text_entry(line: bytes, dim: int) -> bool:
    """Whether ``line`` reads as a text entry ``word v1 ... v_dim`` (a binary entry's float
    bytes almost never do; an empty file after the header counts as text)."""
    if not line:
        return True
    try:
        fields = line.decode("utf-8").rstrip("\n").rstrip().split(" ")
    except UnicodeDecodeError:
        return False
    return len(fields) > dim and all(_is_number(value) for value in fields[-dim:])


def vector_dim(path: str | Path, format: str = "auto") -> int:
    """The dimension of the vectors in ``path``, from its first line (or the fastText header)
    alone: what a config check can afford before any data is read."""
    path = Path(path)
    if format == "auto":
        format = detect_format(path)
    if format not in FORMATS:
        raise VectorFileError(f"unknown vector format {format!r}: use one of {', '.join(FORMATS)} or auto")
    with _open(path) as handle:
        if format == "fasttext_bin":
            head = handle.read(12)  # magic, version, then the model's arguments, dim first
            if len(head) < 12 or struct.unpack("<i", head[:4])[0] != FASTTEXT_MAGIC:
                raise VectorFileError(f"{path} is not a fastText .bin model (no magic number)")
            return struct.unpack("<i", head[8:12])[0]
        first = handle.readline(1 << 20)
    if format == "glove":
        fields = first.rstrip().split(b" ")
        if len(fields) < 2:
            raise VectorFileError(f"{path} line 1: a word without a vector; is this a GloVe file?")
        return len(fields) - 1
    return _parse_header(path, first)[1]


def read_vectors(
    path: str | Path,
    format: str = "auto",
    *,
    vocabulary: Container[str] | None = None,
    limit: int | None = None,
    unicode_errors: str = "strict",
) -> WordVectors:
    """Read a vector file.

    :param format: one of :data:`FORMATS`, or ``auto`` to recognise it.
    :param vocabulary: keep only these words (saves memory on large files).
    :param limit: read only the first N entries (files are sorted by frequency).
    :param unicode_errors: ``strict`` (an error names the entry) or ``replace``/``ignore``.
    """
    path = Path(path)
    if format == "auto":
        format = detect_format(path)
    if format not in FORMATS:
        raise VectorFileError(f"unknown vector format {format!r}: use one of {', '.join(FORMATS)} or auto")
    if not path.is_file():
        raise VectorFileError(f"vector file not found: {path}")
    if format == "fasttext_bin":
        return _read_fasttext_bin(path, vocabulary, limit)
    dim: int | None
    if format == "word2vec_binary":
        words, rows, dim = _read_binary(path, vocabulary, limit, unicode_errors)
    else:
        words, rows, dim = _read_text(path, format != "glove", vocabulary, limit, unicode_errors)
    if dim is None or (not words and vocabulary is None):
        raise VectorFileError(f"{path} holds no vectors")
    return WordVectors(words, np.stack(rows) if rows else np.zeros((0, dim), dtype=np.float32))


def _keep(
    words: list[str],
    rows: list[np.ndarray],
    seen: set[str],
    word: str,
    vector: np.ndarray,
    vocabulary: Container[str] | None,
) -> bool:
    """Add one entry; False for a repeated word (the first one is kept, as gensim does)."""
    if word in seen:
        return False
    seen.add(word)
    if vocabulary is None or word in vocabulary:
        words.append(word)
        rows.append(vector)
    return True


def _parse_header(path: Path, line: bytes) -> tuple[int, int]:
    match = _HEADER.match(line)
    if not match:
        raise VectorFileError(
            f"{path} line 1: expected the header '<count> <dim>' of a word2vec file, got {line[:60]!r}; "
            "for a GloVe file (no header) use format=glove"
        )
    count, dim = int(match.group(1)), int(match.group(2))
    if dim < 1:
        raise VectorFileError(f"{path} line 1: the header gives dimension {dim}; it must be at least 1")
    return count, dim


def _read_text(
    path: Path, has_header: bool, vocabulary, limit, unicode_errors
) -> tuple[list[str], list[np.ndarray], int | None]:
    words: list[str] = []
    rows: list[np.ndarray] = []
    seen: set[str] = set()
    count = dim = None
    entries = duplicates = 0
    with _open(path) as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and has_header:
                count, dim = _parse_header(path, raw)
                continue
            if limit is not None and entries >= limit:
                break
            try:
                line = raw.decode("utf-8", errors=unicode_errors)
            except UnicodeDecodeError:
                raise VectorFileError(
                    f"{path} line {number} is not valid UTF-8: convert the file to UTF-8 "
                    "(or read it with unicode_errors='replace')"
                ) from None
            fields = line.rstrip().split(" ")
            if fields == [""]:
                continue  # a blank line
            if dim is None:
                dim = len(fields) - 1
                if dim < 1:
                    raise VectorFileError(f"{path} line {number}: a word without a vector; is this a word-vector file?")
            word, vector = _parse_entry(path, number, fields, dim, has_header)
            entries += 1
            duplicates += not _keep(words, rows, seen, word, vector, vocabulary)
    if count is not None and limit is None and entries != count:
        raise VectorFileError(
            f"{path}: the header announces {count} words but the file holds {entries}: "
            "the file is truncated or its header is wrong"
        )
    if duplicates:
        log.warning("%s: %d repeated words; the first vector of each was kept", path, duplicates)
    return words, rows, dim


def _parse_entry(path: Path, number: int, fields: list[str], dim: int, has_header: bool) -> tuple[str, np.ndarray]:
    where = "the header" if has_header else "line 1"
    if len(fields) - 1 < dim:
        raise VectorFileError(
            f"{path} line {number}: {len(fields) - 1} values after the word, expected {dim} "
            f"(the dimension of {where}): the line is cut or the file is not a word-vector file"
        )
    word = " ".join(fields[:-dim])
    if not word:
        raise VectorFileError(f"{path} line {number}: the line starts with a space: no word before the vector")
    try:
        vector = np.asarray(fields[-dim:], dtype=np.float32)
    except ValueError:
        bad = next(v for v in fields[-dim:] if not _is_number(v))
        raise VectorFileError(
            f"{path} line {number}: {bad[:30]!r} is not a number (word {word[:30]!r}, expected {dim} numbers)"
        ) from None
    if not np.isfinite(vector).all():
        raise VectorFileError(f"{path} line {number}: the vector of {word[:30]!r} holds nan or inf")
    return word, vector


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class _Reader:
    """Buffered reads of a binary stream: words end at a space, vectors are fixed-size."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle, self.buffer, self.position = handle, b"", 0

    def _fill(self, needed: int) -> bool:
        while len(self.buffer) - self.position < needed:
            chunk = self.handle.read(max(1 << 20, needed))
            if not chunk:
                return False
            self.buffer = self.buffer[self.position :] + chunk
            self.position = 0
        return True

    def word(self) -> bytes | None:
        while True:
            end = self.buffer.find(b" ", self.position)
            if end >= 0:
                word = self.buffer[self.position : end]
                self.position = end + 1
                return word.lstrip(b"\n")
            if not self._fill(len(self.buffer) - self.position + 1):
                return None

    def take(self, size: int) -> bytes | None:
        if not self._fill(size):
            return None
        data = self.buffer[self.position : self.position + size]
        self.position += size
        return data


def _read_binary(path: Path, vocabulary, limit, unicode_errors) -> tuple[list[str], list[np.ndarray], int]:
    words: list[str] = []
    rows: list[np.ndarray] = []
    seen: set[str] = set()
    duplicates = 0
    with _open(path) as handle:
        count, dim = _parse_header(path, handle.readline(1 << 10))
        reader = _Reader(handle)
        total = count if limit is None else min(count, limit)
        for entry in range(1, total + 1):
            raw = reader.word()
            data = reader.take(4 * dim) if raw is not None else None
            if raw is None or data is None:
                raise VectorFileError(
                    f"{path}: entry {entry} of the {count} its header announces ends early: the file is truncated"
                )
            try:
                word = raw.decode("utf-8", errors=unicode_errors)
            except UnicodeDecodeError:
                raise VectorFileError(
                    f"{path} entry {entry}: the word is not valid UTF-8 ({raw[:30]!r}); read it with unicode_errors='replace'"
                ) from None
            if not word:
                raise VectorFileError(f"{path} entry {entry}: an empty word; is this a word2vec binary file?")
            vector = np.frombuffer(data, dtype="<f4").astype(np.float32)
            if not np.isfinite(vector).all():
                raise VectorFileError(
                    f"{path} entry {entry} ({word[:30]!r}): the vector holds nan or inf; "
                    "the file is damaged or not a word2vec binary file"
                )
            duplicates += not _keep(words, rows, seen, word, vector, vocabulary)
    if duplicates:
        log.warning("%s: %d repeated words; the first vector of each was kept", path, duplicates)
    return words, rows, dim


def _read_fasttext_bin(path: Path, vocabulary, limit) -> SubwordVectors:
    try:
        from gensim.models.fasttext import load_facebook_vectors
    except ImportError as error:
        raise VectorFileError(
            f"reading the fastText model {path} needs gensim: pip install 'nmt[embeddings]' (or use its .vec file)"
        ) from error
    try:
        keyed = load_facebook_vectors(str(path))
    except Exception as error:  # gensim raises struct, value and assertion errors alike
        raise VectorFileError(
            f"cannot read {path} as a fastText .bin model: {type(error).__name__}: {str(error)[:120]} "
            "(the file is damaged or truncated, or not a fastText model)"
        ) from error
    words = list(keyed.index_to_key)
    indices: Sequence[int] = range(len(words) if limit is None else min(limit, len(words)))
    if vocabulary is not None:
        indices = [i for i in indices if words[i] in vocabulary]
    vectors = SubwordVectors([words[i] for i in indices], np.asarray(keyed.vectors[list(indices)], dtype=np.float32))
    vectors.keyed = keyed
    return vectors


def write_vectors(vectors: WordVectors, path: str | Path, format: str, *, precision: int = 6) -> Path:
    """Write ``vectors`` in ``format`` (any of :data:`FORMATS` but ``fasttext_bin``, which only
    a gensim FastText model can write). Text values keep ``precision`` significant digits."""
    if format not in FORMATS or format == "fasttext_bin":
        raise VectorFileError(f"cannot write format {format!r}: use word2vec, word2vec_binary, glove or fasttext")
    bad = next((w for w in vectors.words if not w or any(c.isspace() for c in w)), None)
    if bad is not None:
        raise VectorFileError(f"the word {bad!r} is empty or holds a space: word-vector files cannot store it")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    matrix = np.ascontiguousarray(vectors.vectors, dtype="<f4")
    with open(path, "wb") as handle:
        if format != "glove":
            handle.write(f"{len(vectors)} {vectors.dim}\n".encode())
        if format == "word2vec_binary":
            for word, row in zip(vectors.words, matrix):
                handle.write(word.encode("utf-8") + b" " + row.tobytes() + b"\n")
        else:
            handle.writelines(_text_lines(vectors.words, matrix, precision))
    return path


def _text_lines(words: list[str], matrix: np.ndarray, precision: int) -> Iterator[bytes]:
    template = f"{{:.{precision}g}}"
    for word, row in zip(words, matrix):
        yield (word + " " + " ".join(map(template.format, row.tolist())) + "\n").encode("utf-8")


def vector_norm_summary(vectors: WordVectors) -> str:
    """``n words x dim, mean norm ...`` for logs."""
    norms = np.linalg.norm(vectors.vectors, axis=1) if len(vectors) else np.zeros(0)
    mean = float(norms.mean()) if norms.size else math.nan
    return f"{len(vectors)} words x {vectors.dim}, mean norm {mean:.3f}"
