"""Reuters newswire topics, in two layouts.

- ``keras``: the Keras ``reuters.npz`` (11,228 single-topic newswires as word-rank id lists
  ``x`` and topic ids ``y``, 46 topics) with ``reuters_word_index.json`` (word -> rank; rank 1
  is the most frequent word). Split exactly as ``keras.datasets.reuters.load_data`` does
  (shuffle with ``numpy.random.RandomState(113)``, last 20% test: 8,982 / 2,246), so figures
  compare with the Keras ones. The ``x`` and ``y`` arrays are object arrays, which numpy
  stores pickled: they are read with an unpickler that only rebuilds numpy arrays of plain
  Python lists and numbers, never ``allow_pickle=True``.
- ``apte``: the Reuters-21578 ApteMod layout (as in NLTK's ``reuters`` corpus): ``cats.txt``
  lines ``training/9865 grain wheat``, and one text file per document under ``training/``
  and ``test/``. The official ModApte split is kept; documents with more than one topic are
  skipped (counted in the report), so the task stays single-label like the Keras one.

Both return ``({"train": [(text, label id)], "test": [...]}, report, label names)``.
"""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np

from nmt.data.corpora import ReadReport
from nmt.data.text import normalize_text

KERAS_TEST_SPLIT = 0.2
KERAS_SEED = 113

_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _ArrayUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays of lists and numbers; refuses every other global."""

    def find_class(self, module: str, name: str):
        if (module, name) in _NUMPY_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")


def _read_npy(data: bytes, name: str) -> np.ndarray:
    """One ``.npy`` member: plain arrays directly, object arrays through :class:`_ArrayUnpickler`."""
    stream = io.BytesIO(data)
    version = np.lib.format.read_magic(stream)
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    if version not in readers:
        raise ValueError(f"{name}: unsupported .npy format version {version}")
    shape, fortran, dtype = readers[version](stream)
    if dtype.hasobject:
        array = _ArrayUnpickler(stream).load()
        if not isinstance(array, np.ndarray):
            raise ValueError(f"{name} does not hold an array")
        return array
    count = int(np.prod(shape))
    array = np.frombuffer(stream.read(count * dtype.itemsize), dtype=dtype, count=count)
    return array.reshape(shape, order="F" if fortran else "C")


def load_keras_npz(path: str | Path) -> tuple[list[list[int]], list[int]]:
    """``x`` (id lists) and ``y`` (topic ids) of a Keras ``reuters.npz``, without ``allow_pickle``."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = {Path(n).stem: n for n in archive.namelist()}
            if "x" not in members or "y" not in members:
                raise ValueError(f"{path} has no x and y arrays (members: {sorted(members)})")
            xs = _read_npy(archive.read(members["x"]), "x")
            ys = _read_npy(archive.read(members["y"]), "y")
    except (zipfile.BadZipFile, pickle.UnpicklingError, EOFError) as error:
        raise ValueError(f"{path} is not a Keras reuters.npz: {error}") from error
    if len(xs) != len(ys):
        raise ValueError(f"{path}: {len(xs)} newswires but {len(ys)} labels")
    return [[int(w) for w in x] for x in xs], [int(y) for y in ys]


def read_reuters_keras(
    npz_path: str | Path,
    word_index_path: str | Path | None,
    *,
    test_split: float = KERAS_TEST_SPLIT,
    seed: int = KERAS_SEED,
    num_classes: int = 46,
) -> tuple[dict[str, list[tuple[str, int]]], ReadReport, list[str]]:
    """Texts and topics in Keras's train/test split.

    Word ranks are turned back into words with the word index; without one (or for a rank
    it lacks) a word is written ``#<rank>``, so every id stays a distinct token. A newswire
    with a topic outside ``0..num_classes-1`` or no words is counted as malformed.
    """
    xs, ys = load_keras_npz(npz_path)
    words: dict[int, str] = {}
    if word_index_path is not None:
        with open(word_index_path, encoding="utf-8") as handle:
            index = json.load(handle)
        if not isinstance(index, dict):
            raise ValueError(f"{word_index_path} is not a word index (a JSON object word -> rank)")
        words = {int(rank): word for word, rank in index.items()}
    report = ReadReport(str(npz_path), unit="newswires")
    order = np.arange(len(xs))
    np.random.RandomState(seed).shuffle(order)
    cut = int(len(xs) * (1 - test_split))
    splits: dict[str, list[tuple[str, int]]] = {"train": [], "test": []}
    for position, index in enumerate(order):
        report.n_lines += 1
        label = ys[index]
        if not 0 <= label < num_classes:
            report.add_malformed(int(index) + 1, f"topic outside 0..{num_classes - 1}")
            continue
        text = normalize_text(" ".join(words.get(w, f"#{w}") for w in xs[index]))
        if not text:
            report.add_malformed(int(index) + 1, "no words")
            continue
        report.n_ok += 1
        splits["train" if position < cut else "test"].append((text, label))
    return splits, report, [str(k) for k in range(num_classes)]


def read_reuters_apte(directory: str | Path) -> tuple[dict[str, list[tuple[str, int]]], ReadReport, list[str]]:
    """The ModApte split of a Reuters-21578 ApteMod directory; single-topic documents only.

    Label ids follow the sorted topic names of the single-topic training documents; a test
    document whose topic never occurs in training is counted as malformed.
    """
    directory = Path(directory)
    cats = directory / "cats.txt"
    if not cats.is_file():
        raise ValueError(f"{directory} is not a Reuters-21578 ApteMod directory: no cats.txt")
    report = ReadReport(str(cats), unit="single-topic documents")
    documents: list[tuple[str, str, str]] = []  # (split, file id, topic)
    for number, line in enumerate(cats.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        report.n_lines += 1
        fields = line.split()
        split = fields[0].split("/")[0]
        if split not in ("training", "test") or len(fields) < 2:
            report.add_malformed(number, "not 'training|test/ID topic ...'")
        elif len(fields) > 2:
            report.add_malformed(number, "more than one topic (skipped)")
        else:
            documents.append(("train" if split == "training" else "test", fields[0], fields[1]))
    labels = sorted({topic for split, _, topic in documents if split == "train"})
    ids = {topic: k for k, topic in enumerate(labels)}
    splits: dict[str, list[tuple[str, int]]] = {"train": [], "test": []}
    for split, file_id, topic in documents:
        path = directory / file_id
        if topic not in ids:
            report.add_malformed(0, "test topic absent from training")
            continue
        if not path.is_file():
            report.add_malformed(0, "document file missing")
            continue
        text = normalize_text(path.read_bytes().decode("latin-1"))
        if not text:
            report.add_malformed(0, "empty document")
            continue
        report.n_ok += 1
        splits[split].append((text, ids[topic]))
    return splits, report, labels
