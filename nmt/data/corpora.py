"""Readers for the raw corpora: Tatoeba English-French pairs, IMDB, SMS spam and NSMC.

Every reader decodes and validates record by record, so one bad line is counted in a
``ReadReport`` and skipped instead of crashing a long run (or, with ``strict=True``, stops the
run with the file, line and reason). All text goes through ``normalize_text``, the same
function that later normalises references and user input.

A file that is not UTF-8 text as a whole (UTF-16, binary, a compressed file without its
suffix) is not a file of bad lines: its first bytes are checked with
:func:`~nmt.data.input_check.checked_stream`, which raises
:class:`~nmt.data.input_check.NotTextError` with the fix.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import logging
import lzma
import re
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, NamedTuple, cast

from nmt.data.input_check import checked_stream
from nmt.data.text import normalize_text

__all__ = [
    "ReadReport",
    "MalformedCorpusError",
    "open_binary",
    "read_translation_pairs",
    "read_imdb",
    "read_sms",
    "read_nsmc",
]

logger = logging.getLogger("nmt.data")

LabelledSplits = dict[str, list[tuple[str, int]]]
ImdbRecord = tuple[str, str, int]  # (split, text, label)
MemberChooser = Callable[[list[str]], list[str]]  # zip member names -> the wanted ones

MAX_EXAMPLES = 20  # malformed (line, reason) pairs kept for the error report
_EXAMPLES_PER_REASON_IN_SUMMARY = 3


@dataclass
class ReadReport:
    """What a reader saw in one corpus: how many records, how many usable, and why not.

    ``n_lines`` counts records read (lines; files for an aclImdb tree), header excluded.
    ``examples`` holds the first ``MAX_EXAMPLES`` malformed records as (1-based line, reason).
    """

    path: str
    n_lines: int = 0
    n_ok: int = 0
    malformed: dict[str, int] = field(default_factory=dict)
    examples: list[tuple[int, str]] = field(default_factory=list)
    unit: str = "pairs"  # what an accepted record is called in ``summary()``

    @property
    def n_malformed(self) -> int:
        return sum(self.malformed.values())

    def add_malformed(self, line_number: int, reason: str) -> None:
        self.malformed[reason] = self.malformed.get(reason, 0) + 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append((line_number, reason))

    def summary(self) -> str:
        """One line, e.g. ``fra.txt: 10 lines, 8 pairs, 2 malformed (no tab: 1 [line 3], ...)``."""
        text = (
            f"{Path(self.path).name}: {self.n_lines:,} lines, {self.n_ok:,} {self.unit}, {self.n_malformed:,} malformed"
        )
        if not self.malformed:
            return text
        details = [f"{reason}: {count:,}{self._where(reason, count)}" for reason, count in self.malformed.items()]
        return f"{text} ({', '.join(details)})"

    def _where(self, reason: str, count: int) -> str:
        """`` [lines 3, 8, ...]``: the first recorded line numbers for one reason."""
        lines = [str(number) for number, r in self.examples if r == reason]
        if not lines:
            return ""
        shown = lines[:_EXAMPLES_PER_REASON_IN_SUMMARY]
        more = ", ..." if count > len(shown) else ""
        return f" [line{'s' if count > 1 else ''} {', '.join(shown)}{more}]"


class MalformedCorpusError(ValueError):
    """A corpus record could not be parsed and the reader was asked to be strict."""


# --------------------------------------------------------------------------- file access


def open_binary(path: str | Path) -> BinaryIO:
    """Open ``path`` for binary reading, decompressing ``.xz``, ``.gz`` or ``.bz2`` by suffix.

    The one place that knows about compression, so every reader accepts compressed copies.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    # The decompressing readers are binary streams; typeshed types them as BufferedIOBase.
    if suffix == ".xz":
        return cast(BinaryIO, lzma.open(path, "rb"))
    if suffix == ".gz":
        return cast(BinaryIO, gzip.open(path, "rb"))
    if suffix == ".bz2":
        return cast(BinaryIO, bz2.open(path, "rb"))
    return open(path, "rb")


def _require_file(path: Path, what: str, dataset: str) -> None:
    if not path.exists():
        raise FileNotFoundError(
            f"{what} not found: {path}. Point to it with data.path=/path/to/file, put it in "
            f"the data directory ($NMT_DATA_DIR, see nmt.data.download.data_dir), or let "
            f"nmt.data.download.resolve_dataset({dataset!r}) download it."
        )


def _is_zip_junk(name: str) -> bool:
    """macOS adds ``__MACOSX/`` resource forks to zips; they look like data files but are not."""
    return name.startswith("__MACOSX/") or "/__MACOSX/" in name or name.endswith("/")


def _find_zip_member(archive: zipfile.ZipFile, choose: MemberChooser, what: str) -> str:
    names = [name for name in archive.namelist() if not _is_zip_junk(name)]
    chosen = choose(names)
    if len(chosen) != 1:
        found = "none" if not chosen else ", ".join(chosen)
        raise MalformedCorpusError(
            f"{archive.filename}: expected exactly one {what} in the zip, found {found} "
            f"(members: {', '.join(names) or 'none'}). Extract the right file and pass it "
            f"with data.path=..."
        )
    return chosen[0]


@contextmanager
def _open_zip_member(path: Path, choose: MemberChooser, what: str) -> Iterator[BinaryIO]:
    with zipfile.ZipFile(path) as archive:
        member = _find_zip_member(archive, choose, what)
        with archive.open(member) as stream:
            yield cast(BinaryIO, stream)


def _basename(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def _choose_translation_member(names: list[str]) -> list[str]:
    """``fra.txt`` if present, else the single ``*.txt`` that is not manythings' ``_about.txt``."""
    exact = [name for name in names if _basename(name) == "fra.txt"]
    if exact:
        return exact
    return [n for n in names if n.endswith(".txt") and _basename(n) != "_about.txt"]


def _choose_sms_member(names: list[str]) -> list[str]:
    return [name for name in names if _basename(name) == "SMSSpamCollection"]


def _decode_lines(stream: BinaryIO, report: ReadReport, strict: bool) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, text without line ending) for each decodable line.

    Lines are decoded one at a time so that a stray byte costs one line, not the whole file.
    """
    for line_number, raw in enumerate(stream, start=1):
        report.n_lines += 1
        raw = raw.rstrip(b"\r\n")
        if line_number == 1 and raw.startswith(b"\xef\xbb\xbf"):  # byte-order mark
            raw = raw[3:]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            _malformed(report, line_number, "bad utf-8", strict)
            continue
        yield line_number, text


def _malformed(report: ReadReport, line_number: int, reason: str, strict: bool, location: str | None = None) -> None:
    """Count a malformed record, or raise if strict. ``location`` overrides "path, line N"."""
    if strict:
        raise MalformedCorpusError(
            f"{location or f'{report.path}, line {line_number}'}: {reason}. Fix the line or set "
            f"data.strict=false to skip malformed lines."
        )
    report.add_malformed(line_number, reason)


def _log_if_malformed(report: ReadReport) -> None:
    if report.n_malformed:
        logger.warning("skipped malformed records in %s", report.summary())


def _clean(text: str, normalize: bool) -> str:
    return normalize_text(text) if normalize else text


# --------------------------------------------------------------------------- translation


def read_translation_pairs(
    path: str | Path, *, strict: bool = False, normalize: bool = True
) -> tuple[list[tuple[str, str]], ReadReport]:
    """Read ``English<TAB>French[<TAB>attribution...]`` lines (manythings.org/Tatoeba format).

    ``path`` may be ``.txt``, a compressed ``.xz``/``.gz``/``.bz2`` copy, or the original
    ``fra-eng.zip`` (member ``fra.txt``, or the only ``*.txt`` that is not ``_about.txt``;
    ``__MACOSX/`` entries are ignored). Columns after the second (the attribution that newer
    releases add) are ignored.

    A line is malformed when it is not UTF-8 ("bad utf-8"), is blank ("empty line"), has no
    tab ("no tab"), or a side is empty after normalisation ("empty source"/"empty target").
    Malformed lines are counted and skipped, or with ``strict=True`` the first one raises
    ``MalformedCorpusError``.

    :return: (pairs as (source, target) in file order, report)
    """
    path = Path(path)
    _require_file(path, "Translation corpus", "fra")
    report = ReadReport(path=str(path), unit="pairs")
    pairs: list[tuple[str, str]] = []
    with _open_translation_stream(path) as stream:
        for line_number, line in _decode_lines(stream, report, strict):
            pair = _parse_pair(line, normalize)
            if isinstance(pair, str):
                _malformed(report, line_number, pair, strict)
                continue
            pairs.append(pair)
    report.n_ok = len(pairs)
    _log_if_malformed(report)
    return pairs, report


@contextmanager
def _open_translation_stream(path: Path) -> Iterator[BinaryIO]:
    if path.suffix.lower() == ".zip":
        what = "fra.txt or single *.txt corpus"
        with _open_zip_member(path, _choose_translation_member, what) as stream:
            yield checked_stream(stream, str(path))
    else:
        with open_binary(path) as stream:
            yield checked_stream(stream, str(path))


def _parse_pair(line: str, normalize: bool) -> tuple[str, str] | str:
    """The (source, target) pair of one line, or the reason it is malformed."""
    if not line.strip():
        return "empty line"
    fields = line.split("\t")
    if len(fields) < 2:
        return "no tab"
    source, target = _clean(fields[0], normalize), _clean(fields[1], normalize)
    if not source.strip():
        return "empty source"
    if not target.strip():
        return "empty target"
    return source, target


# --------------------------------------------------------------------------- IMDB

_HTML_LINE_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_ACLIMDB_REVIEW = re.compile(r"(?:^|/)(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")
_IMDB_LABELS = {"neg": 0, "pos": 1}
_IMDB_CSV_COLUMNS = ("text", "label", "split")
_UNDECODABLE = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of bad UTF-8 bytes


def _clean_review(text: str) -> str:
    """IMDB reviews carry HTML line breaks; they are spaces, not words."""
    return normalize_text(_HTML_LINE_BREAK.sub(" ", text))


def read_imdb(path: str | Path, *, strict: bool = False) -> tuple[LabelledSplits, ReadReport]:
    """Read the labelled IMDB reviews (Maas et al. 2011) with the official 25k/25k split.

    Accepted forms:
      * the project CSV ``imdb_reviews.csv[.xz|.gz]`` (RFC 4180, header
        ``text,label,split,rating,path``);
      * the original ``aclImdb_v1.tar.gz``;
      * an extracted ``aclImdb/`` directory (or its parent).
    In the tree forms, ``{train,test}/{pos,neg}/<id>_<rating>.txt`` are read (``unsup`` is
    ignored) in the CSV's order: split, then label, then numeric id. Labels: 1 = pos, 0 = neg.
    ``<br />`` tags become spaces before ``normalize_text``.

    :return: ({"train": [(text, label), ...], "test": [...]}, report)
    """
    path = Path(path)
    _require_file(path, "IMDB reviews", "imdb")
    report = ReadReport(path=str(path), unit="reviews")
    splits: LabelledSplits = {"train": [], "test": []}
    if path.is_dir():
        records = _imdb_tree_records(path, report, strict)
    elif re.search(r"\.(tar(\.gz|\.xz|\.bz2)?|tgz)$", path.name, re.IGNORECASE):
        records = _imdb_tar_records(path, report, strict)
    else:
        records = _imdb_csv_records(path, report, strict)
    for split, text, label in records:
        splits[split].append((text, label))
    report.n_ok = sum(len(rows) for rows in splits.values())
    _log_if_malformed(report)
    return splits, report


def _imdb_csv_records(path: Path, report: ReadReport, strict: bool) -> Iterator[ImdbRecord]:
    # surrogateescape keeps reading past bad bytes; the affected row is then reported below.
    with (
        open_binary(path) as binary,
        io.TextIOWrapper(
            checked_stream(binary, str(path)), encoding="utf-8", errors="surrogateescape", newline=""
        ) as text_stream,
    ):
        reader = csv.reader(text_stream)
        header = next(reader, None)
        if header is None or not set(_IMDB_CSV_COLUMNS) <= set(header):
            raise MalformedCorpusError(
                f"{path}: expected a CSV header with columns {', '.join(_IMDB_CSV_COLUMNS)}, "
                f"got {header!r}. Pass the project's imdb_reviews.csv[.xz], the original "
                f"aclImdb_v1.tar.gz or an extracted aclImdb/ directory."
            )
        column = {name: header.index(name) for name in _IMDB_CSV_COLUMNS}
        try:
            for row in reader:
                report.n_lines += 1
                line_number = reader.line_num  # physical line where the record ends
                record = _parse_imdb_csv_row(row, column, len(header))
                if isinstance(record, str):
                    _malformed(report, line_number, record, strict)
                    continue
                yield record
        except csv.Error as error:
            # A broken quote desynchronises everything after it, so reading cannot go on.
            raise MalformedCorpusError(
                f"{path}, line {reader.line_num}: CSV syntax error ({error}). Fix the quoting of "
                f"that record (RFC 4180: quote fields holding commas or quotes, double inner "
                f"quotes)."
            ) from error


def _parse_imdb_csv_row(row: list[str], column: dict[str, int], n_columns: int) -> ImdbRecord | str:
    if len(row) != n_columns:
        return "wrong number of fields"
    text, label, split = (row[column[name]] for name in _IMDB_CSV_COLUMNS)
    if _UNDECODABLE.search(text):
        return "bad utf-8"
    if label not in ("0", "1"):
        return "unknown label"
    if split not in ("train", "test"):
        return "unknown split"
    text = _clean_review(text)
    if not text:
        return "empty text"
    return split, text, int(label)


class _AclReviewFile(NamedTuple):
    """One ``{train,test}/{pos,neg}/<id>_<rating>.txt`` file of the aclImdb tree."""

    split: str
    label: int
    review_id: int
    name: str
    content: bytes

    @property
    def order(self) -> tuple[int, int, int]:
        """The project CSV's order: train before test, then label, then numeric id."""
        return (0 if self.split == "train" else 1, self.label, self.review_id)


def _acl_review_file(name: str, read: Callable[[], bytes]) -> _AclReviewFile | None:
    match = _ACLIMDB_REVIEW.search(name)
    if not match:
        return None  # README, imdb.vocab, unsup/ reviews, ...
    split, polarity, review_id, _rating = match.groups()
    return _AclReviewFile(split, _IMDB_LABELS[polarity], int(review_id), name, read())


def _imdb_tar_records(path: Path, report: ReadReport, strict: bool) -> Iterator[ImdbRecord]:
    found = []
    # Stream mode reads the 84 MB archive sequentially instead of seeking for each member.
    with tarfile.open(path, "r|*") as archive:
        for member in archive:
            if member.isfile():
                stream = archive.extractfile(member)
                assert stream is not None  # a regular file's member always has one
                review = _acl_review_file(member.name, stream.read)
                if review:
                    found.append(review)
    yield from _imdb_review_records(path, found, report, strict)


def _imdb_tree_records(path: Path, report: ReadReport, strict: bool) -> Iterator[ImdbRecord]:
    root = path / "aclImdb" if (path / "aclImdb").is_dir() else path
    found = []
    for file in root.glob("t*/*/*.txt"):
        review = _acl_review_file(file.relative_to(root).as_posix(), file.read_bytes)
        if review:
            found.append(review)
    if not found:
        raise MalformedCorpusError(
            f"{path}: no reviews found under {{train,test}}/{{pos,neg}}/*.txt. Pass the "
            f"extracted aclImdb/ directory, aclImdb_v1.tar.gz or imdb_reviews.csv[.xz]."
        )
    yield from _imdb_review_records(path, found, report, strict)


def _imdb_review_records(
    path: Path, found: list[_AclReviewFile], report: ReadReport, strict: bool
) -> Iterator[ImdbRecord]:
    """Decode one-review-per-file contents; a file's "line number" is its rank in CSV order."""
    found.sort(key=lambda review: review.order)  # archive and directory order are arbitrary
    for rank, review in enumerate(found, start=1):
        report.n_lines += 1
        try:
            text = _clean_review(review.content.decode("utf-8"))
        except UnicodeDecodeError:
            _malformed(report, rank, "bad utf-8", strict, location=f"{path}: {review.name}")
            continue
        if not text:
            _malformed(report, rank, "empty text", strict, location=f"{path}: {review.name}")
            continue
        yield review.split, text, review.label


# --------------------------------------------------------------------------- SMS spam

_SMS_LABELS = {"ham": 0, "spam": 1}


def read_sms(path: str | Path, *, strict: bool = False) -> tuple[LabelledSplits, ReadReport]:
    """Read the UCI SMS Spam Collection: lines ``ham|spam<TAB>message``, no header.

    ``path`` is ``SMSSpamCollection`` (optionally ``.gz``/``.xz``) or the UCI zip
    (``sms+spam+collection.zip`` / ``smsspamcollection.zip``, member ``SMSSpamCollection``).
    Labels: 1 = spam, 0 = ham. The corpus has no official split, so everything is returned
    under ``"all"``; split it with ``nmt.data.split.stratified_split``.

    :return: ({"all": [(message, label), ...]}, report)
    """
    path = Path(path)
    _require_file(path, "SMS spam collection", "sms")
    report = ReadReport(path=str(path), unit="messages")
    messages: list[tuple[str, int]] = []
    with _open_sms_stream(path) as stream:
        for line_number, line in _decode_lines(stream, report, strict):
            record = _parse_sms_line(line)
            if isinstance(record, str):
                _malformed(report, line_number, record, strict)
                continue
            messages.append(record)
    report.n_ok = len(messages)
    _log_if_malformed(report)
    return {"all": messages}, report


@contextmanager
def _open_sms_stream(path: Path) -> Iterator[BinaryIO]:
    if path.suffix.lower() == ".zip":
        with _open_zip_member(path, _choose_sms_member, "SMSSpamCollection file") as stream:
            yield checked_stream(stream, str(path))
    else:
        with open_binary(path) as stream:
            yield checked_stream(stream, str(path))


def _parse_sms_line(line: str) -> tuple[str, int] | str:
    if not line.strip():
        return "empty line"
    if "\t" not in line:
        return "no tab"
    label, message = line.split("\t", 1)
    if label.strip() not in _SMS_LABELS:
        return "unknown label"
    message = normalize_text(message)
    if not message:
        return "empty text"
    return message, _SMS_LABELS[label.strip()]


# --------------------------------------------------------------------------- NSMC

_NSMC_HEADER = "id\tdocument\tlabel"


def read_nsmc(
    train_path: str | Path, test_path: str | Path, *, strict: bool = False
) -> tuple[LabelledSplits, ReadReport]:
    """Read the Naver Sentiment Movie Corpus v1.0 (``ratings_train.txt``, ``ratings_test.txt``).

    TSV with header ``id<TAB>document<TAB>label`` (0 = negative, 1 = positive), optionally
    ``.xz``/``.gz``. There is no CSV quoting: a ``"`` is a literal character (the corpus keeps
    quoting artefacts such as tripled quotes from its crawl). Documents that are empty are real
    rows of the official corpus (5 in train, 3 in test) and are kept as ``""`` so the row
    counts match the published 150,000 / 50,000.

    :return: ({"train": [(document, label), ...], "test": [...]}, one report for both files)
    """
    paths = {"train": Path(train_path), "test": Path(test_path)}
    for split, path in paths.items():
        _require_file(path, f"NSMC {split} file", f"nsmc_{split}")
    splits: LabelledSplits = {}
    reports: dict[str, ReadReport] = {}
    for split, path in paths.items():
        splits[split], reports[split] = _read_nsmc_file(path, strict)
    report = _combine_split_reports(reports, path=f"{paths['train']} + {paths['test'].name}")
    _log_if_malformed(report)
    return splits, report


def _read_nsmc_file(path: Path, strict: bool) -> tuple[list[tuple[str, int]], ReadReport]:
    report = ReadReport(path=str(path), unit="documents")
    rows: list[tuple[str, int]] = []
    with open_binary(path) as raw:
        stream = checked_stream(raw, str(path))
        header = stream.readline().rstrip(b"\r\n")
        if header.decode("utf-8", errors="replace") != _NSMC_HEADER:
            raise MalformedCorpusError(
                f"{path}: expected the NSMC header {_NSMC_HEADER!r}, got {header[:80]!r}. "
                f"Pass NSMC's ratings_train.txt / ratings_test.txt (or their .xz copies)."
            )
        for data_line_number, line in _decode_lines(stream, report, strict):
            file_line_number = data_line_number + 1  # the header is line 1
            record = _parse_nsmc_line(line)
            if isinstance(record, str):
                _malformed(report, file_line_number, record, strict)
                continue
            rows.append(record)
    report.n_ok = len(rows)
    return rows, report


def _combine_split_reports(reports: dict[str, ReadReport], path: str) -> ReadReport:
    """One report for several files; reasons get the split name so line numbers stay unambiguous."""
    combined = ReadReport(path=path, unit=next(iter(reports.values())).unit)
    for split, report in reports.items():
        combined.n_lines += report.n_lines
        combined.n_ok += report.n_ok
        for reason, count in report.malformed.items():
            combined.malformed[f"{reason} ({split})"] = count
        for line_number, reason in report.examples:
            if len(combined.examples) < MAX_EXAMPLES:
                combined.examples.append((line_number, f"{reason} ({split})"))
    return combined


def _parse_nsmc_line(line: str) -> tuple[str, int] | str:
    fields = line.split("\t")
    if len(fields) < 3:
        return "wrong number of fields"
    label = fields[-1]
    if label not in ("0", "1"):
        return "unknown label"
    document = "\t".join(fields[1:-1])  # NSMC has no tabs in documents; keep any that appear
    return normalize_text(document), int(label)
