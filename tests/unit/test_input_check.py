"""Input that is not UTF-8 text is refused with the fix; UTF-8, even a little broken, is not."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import random
import zipfile

import pytest
import torch

from nmt.data.corpora import read_imdb, read_nsmc, read_sms, read_translation_pairs
from nmt.data.input_check import SNIFF_BYTES, NotTextError, check_text, checked_stream, text_problem

TEXT = "Bonjour, ça va ? Le café est très bon. 안녕하세요 세계 \U0001f600\n" * 40


def zipped(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("texts.txt", data)
    return buffer.getvalue()


def checkpoint_bytes() -> bytes:
    buffer = io.BytesIO()
    torch.save({"weight": torch.zeros(8, 8)}, buffer)
    return buffer.getvalue()


REFUSED = {
    "UTF-16 with BOM": (TEXT.encode("utf-16"), "UTF-16LE (byte-order mark FF FE)", "iconv -f UTF-16 -t UTF-8"),
    "UTF-16BE with BOM": (b"\xfe\xff" + TEXT.encode("utf-16-be"), "UTF-16BE (byte-order mark FE FF)", "-f UTF-16 "),
    "UTF-32 with BOM": (TEXT.encode("utf-32"), "UTF-32LE (byte-order mark FF FE 00 00)", "-f UTF-32 "),
    "UTF-16LE without BOM": (TEXT.encode("utf-16-le"), "UTF-16LE without a byte-order mark", "-f UTF-16LE "),
    "UTF-16BE without BOM": (TEXT.encode("utf-16-be"), "UTF-16BE without a byte-order mark", "-f UTF-16BE "),
    "UTF-32LE without BOM": (TEXT.encode("utf-32-le"), "UTF-32LE without a byte-order mark", "-f UTF-32LE "),
    "Korean UTF-16LE (NULs only at spaces)": (("안녕하세요 세계 " * 60).encode("utf-16-le"), "UTF-16LE", "iconv"),
    "one short UTF-16 line": ("hi\n".encode("utf-16-le"), "UTF-16LE", "iconv"),
    "gzip": (gzip.compress(TEXT.encode()), "gzip-compressed", "gunzip -c"),
    "xz": (lzma.compress(TEXT.encode()), "xz-compressed", "xz -dc"),
    "bzip2": (bz2.compress(TEXT.encode()), "bzip2-compressed", "bzip2 -dc"),
    "zip": (zipped(TEXT.encode()), "zip archive", "extract"),
    "PyTorch checkpoint": (checkpoint_bytes(), "zip archive", "extract"),
    "random bytes": (random.Random(0).randbytes(4000), "binary", "UTF-8 text file"),
    "NULs in binary proportions": (b"header\x00\x00\x01\x00" * 50, "binary", "UTF-8 text file"),
    "control bytes": (bytes(range(1, 9)) * 40 + b"text\n", "control bytes", "UTF-8 text file"),
    "Cyrillic in CP1251": (("Привет, мир! Как дела?\n" * 30).encode("cp1251"), "not valid UTF-8", "iconv"),
    "Korean in EUC-KR": (("안녕하세요 세계\n" * 30).encode("euc-kr"), "not valid UTF-8", "iconv"),
}

ACCEPTED = {
    "UTF-8": TEXT.encode(),
    "UTF-8 with BOM": b"\xef\xbb\xbf" + TEXT.encode(),
    "empty": b"",
    "a few Latin-1 bytes in UTF-8 text": TEXT.encode() + "Café crème\n".encode("latin-1") * 5,
    "French in Latin-1 (a few bad bytes per line)": ("Le café est très bon.\n" * 40).encode("latin-1"),
    "a stray NUL and controls (the CLIs' hostile lines)": b"a\x00b\x07c\x1bd\x0ce\x0bf\x1cg\n" + TEXT.encode(),
    "ANSI colours and tabs": b"\x1b[31mred\x1b[0m\tcolumn\r\n" * 100,
    "a character cut at the end of the sniffed bytes": b"a" * (SNIFF_BYTES - 1) + "é".encode(),
}


@pytest.mark.parametrize("data, what, fix", REFUSED.values(), ids=REFUSED.keys())
def test_not_utf8_text_is_refused_with_what_it_looks_like_and_the_fix(data, what, fix):
    with pytest.raises(NotTextError) as error:
        check_text(data[:SNIFF_BYTES], "input.txt")
    message = str(error.value)
    assert message.startswith("input.txt ") and what in message and fix in message, message
    assert "\n" not in message
    assert isinstance(error.value, ValueError)  # the CLIs' one-line error path catches it


@pytest.mark.parametrize("data", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_utf8_text_is_accepted_even_with_a_few_bad_bytes(data):
    assert text_problem(data[:SNIFF_BYTES]) is None


def test_standard_input_is_named_as_such_and_the_fix_uses_a_placeholder():
    with pytest.raises(NotTextError, match=r"^standard input looks like UTF-16LE .* iconv -f UTF-16 -t UTF-8 FILE"):
        check_text(TEXT.encode("utf-16"), "-")


def test_checked_stream_replays_every_byte_and_drops_a_utf8_bom():
    data = TEXT.encode() * 10  # longer than what is sniffed
    assert checked_stream(io.BytesIO(data), "x").read() == data
    assert checked_stream(io.BytesIO(b"\xef\xbb\xbf" + data), "x").read() == data
    lines = list(checked_stream(io.BytesIO(b"\xef\xbb\xbfone\ntwo\r\nthree"), "x"))
    assert lines == [b"one\n", b"two\r\n", b"three"]


class EndlessStream(io.RawIOBase):
    """Standard input that never ends; counts what was taken from it."""

    def __init__(self) -> None:
        self.taken = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = min(len(buffer), 100)  # a pipe hands out small pieces
        buffer[:count] = b"line\n" * 20
        self.taken += count
        return count


def test_checked_stream_reads_only_the_sniffed_bytes_ahead_of_the_reader():
    endless = EndlessStream()
    stream = checked_stream(endless, "-")
    assert endless.taken == SNIFF_BYTES
    assert stream.readline() == b"line\n"
    assert endless.taken <= SNIFF_BYTES + (1 << 16)  # then one buffer at a time, not everything


def test_a_utf16_stdin_is_refused_after_the_sniffed_bytes_only():
    class Utf16Endless(EndlessStream):
        def readinto(self, buffer) -> int:
            data = "line\n".encode("utf-16-le") * 10
            buffer[: len(data)] = data
            self.taken += len(data)
            return len(data)

    endless = Utf16Endless()
    with pytest.raises(NotTextError, match="UTF-16LE"):
        checked_stream(endless, "-")
    assert endless.taken <= SNIFF_BYTES + 100


# -- corpus readers ---------------------------------------------------------------------------


def test_corpus_readers_refuse_a_utf16_corpus_instead_of_counting_bad_lines(tmp_path):
    fra = tmp_path / "fra.txt"
    fra.write_bytes("Go.\tVa !\nHi.\tSalut !\n".encode("utf-16"))
    with pytest.raises(NotTextError, match=r"fra.txt looks like UTF-16LE"):
        read_translation_pairs(fra)
    sms = tmp_path / "SMSSpamCollection.gz"
    sms.write_bytes(gzip.compress("ham\thello\nspam\tfree prize\n".encode("utf-16-le")))
    with pytest.raises(NotTextError, match="UTF-16LE without a byte-order mark"):
        read_sms(sms)
    imdb = tmp_path / "imdb_reviews.csv"
    imdb.write_bytes(gzip.compress(b"text,label,split\nGood.,1,train\n"))  # gzip without its suffix
    with pytest.raises(NotTextError, match="gzip-compressed data.*gunzip -c"):
        read_imdb(imdb)
    train, test = tmp_path / "ratings_train.txt", tmp_path / "ratings_test.txt"
    train.write_bytes("id\tdocument\tlabel\n1\t좋아요\t1\n".encode("utf-32"))
    test.write_bytes(b"id\tdocument\tlabel\n1\tok\t1\n")
    with pytest.raises(NotTextError, match="ratings_train.txt looks like UTF-32"):
        read_nsmc(train, test)


def test_corpus_readers_accept_a_utf8_bom(tmp_path):
    imdb = tmp_path / "imdb_reviews.csv"
    imdb.write_bytes(b"\xef\xbb\xbftext,label,split\nGood film.,1,train\nBad.,0,test\n")
    splits, report = read_imdb(imdb)  # the BOM used to glue itself to the first column's name
    assert splits == {"train": [("Good film.", 1)], "test": [("Bad.", 0)]} and report.n_malformed == 0
    fra = tmp_path / "fra.txt"
    fra.write_bytes(b"\xef\xbb\xbfGo.\tVa !\n")
    assert read_translation_pairs(fra)[0] == [("Go.", "Va !")]
