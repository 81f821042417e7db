"""Corpus readers: formats, compression, and how malformed records are counted or rejected."""

import csv
import gzip
import io
import logging
import lzma
import tarfile
import tempfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nmt.data.corpora import (
    MalformedCorpusError,
    ReadReport,
    open_binary,
    read_imdb,
    read_nsmc,
    read_sms,
    read_translation_pairs,
)
from nmt.data.input_check import SNIFF_BYTES, NotTextError, text_problem
from nmt.data.text import normalize_text

CLEAN_FRA = "Go.\tVa\u202f!\nHi.\tSalut !\nRun!\tCours\u00a0!\n".encode()


def write(path, data: bytes):
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------- open_binary


@pytest.mark.parametrize(
    "name, compress",
    [("f.txt", lambda b: b), ("f.txt.xz", lzma.compress), ("f.txt.gz", gzip.compress)],
)
def test_open_binary_decompresses_by_suffix(tmp_path, name, compress):
    path = write(tmp_path / name, compress(b"hello\n"))
    with open_binary(path) as stream:
        assert stream.read() == b"hello\n"


# --------------------------------------------------------------------------- translation pairs


@pytest.mark.parametrize(
    "name, compress",
    [
        ("fra.txt", lambda b: b),
        ("fra.txt.xz", lzma.compress),
        ("fra.txt.gz", gzip.compress),
        ("fra.xz", lzma.compress),
        ("fra.gz", gzip.compress),
    ],
)
def test_translation_pairs_read_plain_and_compressed_files(tmp_path, name, compress):
    pairs, report = read_translation_pairs(write(tmp_path / name, compress(CLEAN_FRA)))
    assert pairs == [("Go.", "Va !"), ("Hi.", "Salut !"), ("Run!", "Cours !")]
    assert (report.n_lines, report.n_ok, report.n_malformed) == (3, 3, 0)


def make_fra_zip(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_translation_pairs_read_the_original_zip_ignoring_about_and_macosx(tmp_path):
    path = make_fra_zip(
        tmp_path / "fra-eng.zip",
        {
            "fra-eng/_about.txt": b"About this file\n",
            "fra-eng/fra.txt": CLEAN_FRA,
            "__MACOSX/fra-eng/._fra.txt": b"\x00\x05\x16\x07 resource fork",
        },
    )
    pairs, report = read_translation_pairs(path)
    assert len(pairs) == 3 and report.n_malformed == 0


def test_translation_zip_falls_back_to_the_single_non_about_txt(tmp_path):
    path = make_fra_zip(tmp_path / "deu-eng.zip", {"_about.txt": b"x\n", "deu.txt": b"Go.\tGeh.\n"})
    pairs, _ = read_translation_pairs(path)
    assert pairs == [("Go.", "Geh.")]


def test_translation_zip_with_ambiguous_members_names_them(tmp_path):
    path = make_fra_zip(tmp_path / "x.zip", {"a.txt": b"", "b.txt": b""})
    with pytest.raises(MalformedCorpusError, match="a.txt, b.txt"):
        read_translation_pairs(path)


def test_attribution_column_is_ignored(tmp_path):
    attribution = "CC-BY 2.0 (France) Attribution: tatoeba.org #2877272 (CM) & #1158250 (Wittydev)"
    line = f"Go.\tVa !\t{attribution}\n"
    pairs, report = read_translation_pairs(write(tmp_path / "fra.txt", line.encode()))
    assert pairs == [("Go.", "Va !")] and report.n_malformed == 0


def test_crlf_line_endings_are_stripped(tmp_path):
    pairs, _ = read_translation_pairs(write(tmp_path / "fra.txt", b"Go.\tVa !\r\nHi.\tSalut.\r\n"))
    assert pairs == [("Go.", "Va !"), ("Hi.", "Salut.")]


def test_malformed_lines_are_counted_and_skipped_with_line_numbers(tmp_path):
    data = (
        b"Go.\tVa !\n"  # 1 ok
        b"no tab here\n"  # 2
        b"\xff\xfe broken\tutf8\n"  # 3
        b"\tcible\n"  # 4
        + "Source\t\u200b\n".encode()  # 5: target is empty after normalising
        + b"\n"  # 6 blank
        b"Hi.\tSalut.\n"  # 7 ok
    )
    pairs, report = read_translation_pairs(write(tmp_path / "fra.txt", data))
    assert pairs == [("Go.", "Va !"), ("Hi.", "Salut.")]
    assert report.n_lines == 7 and report.n_ok == 2 and report.n_malformed == 5
    assert report.malformed == {
        "no tab": 1,
        "bad utf-8": 1,
        "empty source": 1,
        "empty target": 1,
        "empty line": 1,
    }
    assert report.examples == [
        (2, "no tab"),
        (3, "bad utf-8"),
        (4, "empty source"),
        (5, "empty target"),
        (6, "empty line"),
    ]


def test_strict_mode_raises_on_first_malformed_line_with_file_line_reason_and_fix(tmp_path):
    path = write(tmp_path / "fra.txt", b"Go.\tVa !\nno tab\n\xff\tx\n")
    with pytest.raises(MalformedCorpusError) as error:
        read_translation_pairs(path, strict=True)
    message = str(error.value)
    assert str(path) in message and "line 2" in message and "no tab" in message
    assert "data.strict=false" in message


def test_normalize_false_keeps_text_verbatim(tmp_path):
    pairs, _ = read_translation_pairs(write(tmp_path / "fra.txt", CLEAN_FRA), normalize=False)
    assert pairs[0] == ("Go.", "Va\u202f!")


def test_missing_corpus_error_tells_how_to_provide_it(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        read_translation_pairs(tmp_path / "nope.txt")
    message = str(error.value)
    assert "nope.txt" in message and "data.path=" in message and "NMT_DATA_DIR" in message


def test_malformed_lines_are_logged_as_one_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="nmt.data"):
        read_translation_pairs(write(tmp_path / "fra.txt", b"Go.\tVa !\nbad\n"))
    assert any("no tab: 1 [line 2]" in record.getMessage() for record in caplog.records)


def test_clean_corpus_logs_no_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="nmt.data"):
        read_translation_pairs(write(tmp_path / "fra.txt", CLEAN_FRA))
    assert not caplog.records


def test_report_summary_is_one_readable_line():
    report = ReadReport(path="/data/fra.txt", n_lines=164_265, n_ok=164_263)
    report.add_malformed(17, "no tab")
    report.add_malformed(99, "empty target")
    assert report.summary() == (
        "fra.txt: 164,265 lines, 164,263 pairs, 2 malformed (no tab: 1 [line 17], empty target: 1 [line 99])"
    )


def test_report_keeps_only_the_first_twenty_examples():
    report = ReadReport(path="f.txt")
    for line in range(1, 31):
        report.add_malformed(line, "no tab")
    assert report.n_malformed == 30 and len(report.examples) == 20
    assert "no tab: 30 [lines 1, 2, 3, ...]" in report.summary()


# --------------------------------------------------------------------------- IMDB

IMDB_ROWS = [
    ('Great film.<br /><br />Loved it, "truly".', 1, "train", 9, "train/pos/0_9.txt"),
    ("Awful.<BR>Dull\ttabs", 0, "train", 1, "train/neg/0_1.txt"),
    ("Fine<br/>movie", 1, "test", 8, "test/pos/0_8.txt"),
]


def imdb_csv_bytes(rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["text", "label", "split", "rating", "path"])
    writer.writerows(rows)
    return buffer.getvalue().encode()


@pytest.mark.parametrize("name, compress", [("imdb_reviews.csv", lambda b: b), ("imdb_reviews.csv.xz", lzma.compress)])
def test_imdb_csv_gives_official_splits_and_replaces_br_tags(tmp_path, name, compress):
    splits, report = read_imdb(write(tmp_path / name, compress(imdb_csv_bytes(IMDB_ROWS))))
    assert splits["train"] == [('Great film. Loved it, "truly".', 1), ("Awful. Dull tabs", 0)]
    assert splits["test"] == [("Fine movie", 1)]
    assert report.n_ok == 3 and report.n_malformed == 0


def test_imdb_csv_counts_bad_labels_and_splits(tmp_path):
    rows = IMDB_ROWS + [("x", 7, "train", 1, "p"), ("y", 1, "val", 9, "p")]
    splits, report = read_imdb(write(tmp_path / "imdb.csv", imdb_csv_bytes(rows)))
    assert report.malformed == {"unknown label": 1, "unknown split": 1}
    assert sum(map(len, splits.values())) == 3


def test_imdb_csv_with_a_wrong_header_says_which_files_are_accepted(tmp_path):
    with pytest.raises(MalformedCorpusError, match="aclImdb_v1.tar.gz"):
        read_imdb(write(tmp_path / "imdb.csv", b"review,sentiment\nok,positive\n"))


def make_acl_tree(root):
    reviews = {
        "train/pos/0_9.txt": b"Good<br />fun",
        "train/pos/10_7.txt": b"Nice",
        "train/pos/2_10.txt": b"Best",
        "train/neg/1_2.txt": b"Bad",
        "test/neg/0_1.txt": b"Worst",
        "test/pos/3_8.txt": b"Fine",
        "train/unsup/5_0.txt": b"unlabelled, ignored",
    }
    for relative, content in reviews.items():
        file = root / "aclImdb" / relative
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(content)
    (root / "aclImdb" / "README").write_text("Large Movie Review Dataset")


EXPECTED_ACL = {
    "train": [("Bad", 0), ("Good fun", 1), ("Best", 1), ("Nice", 1)],  # label, then numeric id
    "test": [("Worst", 0), ("Fine", 1)],
}


def test_imdb_reads_the_original_tarball_in_label_then_id_order(tmp_path):
    make_acl_tree(tmp_path / "tree")
    tarball = tmp_path / "aclImdb_v1.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(tmp_path / "tree" / "aclImdb", arcname="aclImdb")
    splits, report = read_imdb(tarball)
    assert splits == EXPECTED_ACL
    assert report.n_lines == 6 and report.n_malformed == 0


@pytest.mark.parametrize("subdir", ["", "aclImdb"])
def test_imdb_reads_an_extracted_tree_or_its_parent(tmp_path, subdir):
    make_acl_tree(tmp_path)
    splits, _ = read_imdb(tmp_path / subdir if subdir else tmp_path)
    assert splits == EXPECTED_ACL


def test_imdb_tree_counts_a_review_with_bad_utf8(tmp_path):
    make_acl_tree(tmp_path)
    (tmp_path / "aclImdb/test/pos/4_9.txt").write_bytes(b"caf\xe9")
    splits, report = read_imdb(tmp_path / "aclImdb")
    assert report.malformed == {"bad utf-8": 1} and len(splits["test"]) == 2


# --------------------------------------------------------------------------- SMS spam

SMS = b'ham\tOk lar... Joking wif u oni...\nspam\tWINNER!! \xc2\xa3900 prize "claim"\nham\tSee you\tlater\n'


@pytest.mark.parametrize(
    "name, compress", [("SMSSpamCollection", lambda b: b), ("SMSSpamCollection.gz", gzip.compress)]
)
def test_sms_reads_labels_and_keeps_quotes_and_inner_tabs(tmp_path, name, compress):
    splits, report = read_sms(write(tmp_path / name, compress(SMS)))
    assert splits == {
        "all": [
            ("Ok lar... Joking wif u oni...", 0),
            ('WINNER!! \u00a3900 prize "claim"', 1),
            ("See you later", 0),
        ]
    }
    assert report.n_ok == 3


def test_sms_reads_the_uci_zip(tmp_path):
    path = tmp_path / "sms+spam+collection.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme", "SMS Spam Collection v.1")
        archive.writestr("SMSSpamCollection", SMS)
        archive.writestr("__MACOSX/._SMSSpamCollection", b"\x00")
    splits, _ = read_sms(path)
    assert len(splits["all"]) == 3


def test_sms_counts_unknown_labels_and_missing_tabs(tmp_path):
    data = SMS + b"eggs\tnot a label\nno tab at all\n"
    splits, report = read_sms(write(tmp_path / "SMSSpamCollection", data))
    assert report.malformed == {"unknown label": 1, "no tab": 1}
    assert report.examples == [(4, "unknown label"), (5, "no tab")]
    assert len(splits["all"]) == 3


# --------------------------------------------------------------------------- NSMC

NSMC_TRAIN = (
    "id\tdocument\tlabel\n"
    "9976970\t아 더빙.. 진짜 짜증나네요 목소리\t0\n"
    '3819312\t"""흠...포스터보고 초딩영화줄"""\t1\n'
    "10265843\t\t0\n"  # an empty document: a real row of the corpus
).encode()
NSMC_TEST = (
    "id\tdocument\tlabel\n6270596\t굳 ㅋ\t1\n8544678\t뭐야 이 평점들은\t5\n"  # label 5 is not a label
).encode()


def test_nsmc_keeps_empty_documents_and_literal_quotes(tmp_path):
    train = write(tmp_path / "nsmc_ratings_train.txt.xz", lzma.compress(NSMC_TRAIN))
    test = write(tmp_path / "ratings_test.txt", NSMC_TEST)
    splits, report = read_nsmc(train, test)
    assert splits["train"] == [
        ("아 더빙.. 진짜 짜증나네요 목소리", 0),
        ('"""흠...포스터보고 초딩영화줄"""', 1),
        ("", 0),
    ]
    assert splits["test"] == [("굳 ㅋ", 1)]
    assert report.n_lines == 5 and report.n_ok == 4
    # line 3 of the test file (the header is line 1) has label 5
    assert report.malformed == {"unknown label (test)": 1}
    assert report.examples == [(3, "unknown label (test)")]


def test_nsmc_strict_error_names_the_file_that_is_broken(tmp_path):
    train = write(tmp_path / "train.txt", NSMC_TRAIN)
    test = write(tmp_path / "test.txt", NSMC_TEST)
    with pytest.raises(MalformedCorpusError, match=r"test\.txt, line 3: unknown label"):
        read_nsmc(train, test, strict=True)


def test_nsmc_rejects_a_file_without_the_nsmc_header(tmp_path):
    train = write(tmp_path / "train.txt", b"document\tlabel\nx\t1\n")
    with pytest.raises(MalformedCorpusError, match="id\\\\tdocument\\\\tlabel"):
        read_nsmc(train, write(tmp_path / "test.txt", NSMC_TEST))


def test_imdb_strict_error_names_the_review_file(tmp_path):
    make_acl_tree(tmp_path)
    (tmp_path / "aclImdb/test/pos/4_9.txt").write_bytes(b"caf\xe9")
    with pytest.raises(MalformedCorpusError, match="test/pos/4_9.txt: bad utf-8"):
        read_imdb(tmp_path / "aclImdb", strict=True)


def test_imdb_csv_row_with_bad_utf8_is_counted_not_fatal(tmp_path):
    data = imdb_csv_bytes(IMDB_ROWS).replace(b"Fine", b"F\xffine")
    splits, report = read_imdb(write(tmp_path / "imdb.csv", data))
    assert report.malformed == {"bad utf-8": 1} and splits["test"] == []


# --------------------------------------------------------------------------- properties (Hypothesis)
# Whatever bytes a line holds, the readers neither crash nor lose count: every line becomes a
# record or a counted malformed line. A whole file that is not UTF-8 text is refused at once.

PROPERTY_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

text_field = st.text(st.characters(blacklist_characters="\n\t", blacklist_categories=("Cs",)), max_size=20)
raw_line = st.one_of(
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")),  # anything, bad UTF-8 included
    st.tuples(text_field, text_field).map(lambda p: f"{p[0]}\t{p[1]}".encode()),  # a pair
    st.tuples(st.sampled_from(["ham", "spam", "other", ""]), text_field).map(lambda p: f"{p[0]}\t{p[1]}".encode()),
    st.tuples(st.integers(0, 10**6), text_field, st.sampled_from(["0", "1", "2", ""])).map(
        lambda p: f"{p[0]}\t{p[1]}\t{p[2]}".encode()
    ),  # an NSMC row
    text_field.map(str.encode),  # no tab
)
raw_lines = st.lists(raw_line, max_size=25)


def corpus_bytes(lines: list[bytes], crlf: bool, final_newline: bool) -> bytes:
    data = (b"\r\n" if crlf else b"\n").join(lines)
    return data + (b"\n" if final_newline and lines else b"")


def file_lines(data: bytes) -> list[bytes]:
    """The lines of a file as ``wc -l`` plus an unterminated last line counts them; a UTF-8
    byte-order mark is not part of the text."""
    lines = data.removeprefix(b"\xef\xbb\xbf").split(b"\n")
    return lines[:-1] if lines[-1] == b"" else lines


def read_or_refused(reader, data: bytes, name: str):
    """The reader's result, or None when the whole file is refused as not UTF-8 text (and
    then only if the sniffer says so)."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / name
        path.write_bytes(data)
        try:
            return reader(path)
        except NotTextError:
            assert text_problem(data[:SNIFF_BYTES]) is not None
            return None


def expected_pair(line: bytes) -> tuple[str, str] | None:
    """The specification of one fra.txt line, written out independently of the reader."""
    try:
        text = line.rstrip(b"\r").decode("utf-8")
    except UnicodeDecodeError:
        return None
    fields = text.split("\t")
    if len(fields) < 2:
        return None
    source, target = normalize_text(fields[0]), normalize_text(fields[1])
    return (source, target) if source and target else None


@PROPERTY_SETTINGS
@given(lines=raw_lines, crlf=st.booleans(), final_newline=st.booleans())
def test_translation_reader_accounts_for_every_line(lines, crlf, final_newline):
    data = corpus_bytes(lines, crlf, final_newline)
    result = read_or_refused(read_translation_pairs, data, "fra.txt")
    if result is None:
        return
    pairs, report = result
    lines = file_lines(data)
    assert report.n_lines == len(lines)
    assert report.n_ok == len(pairs) and report.n_ok + report.n_malformed == report.n_lines
    assert pairs == [pair for pair in map(expected_pair, lines) if pair is not None]
    assert all(len(report.examples) <= 20 and 1 <= n <= len(lines) for n, _ in report.examples)


@PROPERTY_SETTINGS
@given(lines=raw_lines, crlf=st.booleans())
def test_sms_reader_accounts_for_every_line(lines, crlf):
    data = corpus_bytes(lines, crlf, True)
    result = read_or_refused(read_sms, data, "SMSSpamCollection")
    if result is None:
        return
    splits, report = result
    assert report.n_lines == len(file_lines(data))
    assert report.n_ok == len(splits["all"]) and report.n_ok + report.n_malformed == report.n_lines
    assert all(text and label in (0, 1) for text, label in splits["all"])


@PROPERTY_SETTINGS
@given(train_lines=raw_lines, test_lines=raw_lines)
def test_nsmc_reader_accounts_for_every_line_of_both_files(train_lines, test_lines):
    header = [b"id\tdocument\tlabel"]
    with tempfile.TemporaryDirectory() as directory:
        train, test = Path(directory) / "train.txt", Path(directory) / "test.txt"
        train.write_bytes(corpus_bytes(header + train_lines, False, True))
        test.write_bytes(corpus_bytes(header + test_lines, False, True))
        try:
            splits, report = read_nsmc(train, test)
        except NotTextError:
            assert any(text_problem(p.read_bytes()[:SNIFF_BYTES]) for p in (train, test))
            return
    assert report.n_lines == len(train_lines) + len(test_lines)
    assert report.n_ok == len(splits["train"]) + len(splits["test"])
    assert report.n_ok + report.n_malformed == report.n_lines
    assert all(label in (0, 1) for rows in splits.values() for _, label in rows)
