"""Refuse input that is not UTF-8 text, instead of translating it as mojibake.

Every reader of user text (the translate and classify CLIs, ``python -m nmt.evaluate``, the
corpus readers) decodes bytes as UTF-8 and forgives a few bad bytes: they become U+FFFD, or
one skipped corpus line. That is right for UTF-8 with a stray Latin-1 byte, and wrong for a
whole file in another encoding. UTF-16, which Windows PowerShell's ``>`` and Notepad's
"Unicode" write, decodes into letters separated by NULs; a gzip file or a checkpoint
decodes into noise; either would be "translated" without a word of warning.

:func:`text_problem` looks at the first :data:`SNIFF_BYTES` bytes and names what is wrong;
:func:`checked_stream` applies it to a binary stream without reading more than those bytes
ahead, so a large file or an endless pipe is checked in constant memory. A UTF-8
byte-order mark is not a problem: :func:`checked_stream` drops it.
"""

from __future__ import annotations

import codecs
import io
import re
from dataclasses import dataclass
from typing import BinaryIO

__all__ = ["SNIFF_BYTES", "NotTextError", "TextProblem", "text_problem", "check_text", "checked_stream"]

SNIFF_BYTES = 8192
"""How much of the input is inspected (git also decides "binary" on its first 8,000 bytes)."""

UTF8_BOM = codecs.BOM_UTF8

# The thresholds leave room for the odd control character or bad byte in real text (the
# CLIs promise to accept those) while catching whole files in another format: UTF-16 text
# has a NUL in every other byte, compressed or binary data is mostly invalid UTF-8.
NUL_SHARE = 0.01  # NULs: binary from 1% of the bytes on ...
MIN_NULS = 2  # ... and at least this many (one NUL is a stray control character)
CONTROL_SHARE = 0.10  # control bytes other than tab, line breaks and ESC: binary from 10% ...
MIN_CONTROLS = 8  # ... and at least this many
INVALID_SHARE = 0.25  # bytes that are not valid UTF-8: another encoding from 25% ...
MIN_INVALID = 8  # ... and at least this many
WIDE_NUL_SHARE = 0.10  # UTF-16/32 without BOM: NULs in at least 10% of one byte lane
PRINTABLE_SHARE = 0.90  # ... and the text decoded that way is at least 90% printable

# (prefix, encoding, iconv name); UTF-32 first: its little-endian BOM starts like UTF-16's.
_BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF32_LE, "UTF-32LE", "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32BE", "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16LE", "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16BE", "UTF-16"),
)

# (magic bytes, what the file is, how to get text out of it)
_SIGNATURES = (
    (b"\x1f\x8b", "gzip-compressed data", "decompress it first, e.g. gunzip -c {name}"),
    (b"\xfd7zXZ\x00", "xz-compressed data", "decompress it first, e.g. xz -dc {name}"),
    (re.compile(rb"BZh[1-9]1AY&SY"), "bzip2-compressed data", "decompress it first, e.g. bzip2 -dc {name}"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed data", "decompress it first, e.g. zstd -dc {name}"),
    (b"PK\x03\x04", "a zip archive (a .zip, .docx or PyTorch checkpoint)", "extract the text file from it first"),
)

_CONTROL_BYTES = bytes([*range(0x00, 0x09), *range(0x0E, 0x1B), *range(0x1C, 0x20), 0x7F])
_UNDECODABLE = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of each bad byte


@dataclass(frozen=True)
class TextProblem:
    """Why some bytes are not UTF-8 text. :ivar what: e.g. ``looks like UTF-16LE (BOM FF FE)``.
    :ivar fix: a template with ``{name}`` for the file, e.g. ``iconv -f UTF-16 -t UTF-8 {name}``."""

    what: str
    fix: str

    def message(self, name: str) -> str:
        """One line naming the input, the problem and the fix."""
        shown = "standard input" if name in ("-", "<stdin>", "stdin") else name
        file = "FILE" if shown == "standard input" else name
        return f"{shown} {self.what}, not UTF-8 text: {self.fix.format(name=file)}"


class NotTextError(ValueError):
    """The input is not UTF-8 text (UTF-16/32, compressed, binary or another encoding)."""

    def __init__(self, name: str, problem: TextProblem) -> None:
        super().__init__(problem.message(name))
        self.name = name
        self.problem = problem


def _convert(iconv_name: str) -> str:
    return f"convert it to UTF-8, e.g. iconv -f {iconv_name} -t UTF-8 {{name}} > utf8.txt"


def _lane_nul_shares(head: bytes, width: int) -> list[float]:
    """Share of NUL bytes at each position modulo ``width`` (a "lane" of a UTF-16/32 unit)."""
    usable = len(head) - len(head) % width
    if usable < 2 * width:
        return [0.0] * width
    return [head[lane:usable:width].count(0) / (usable // width) for lane in range(width)]


def _mostly_printable(head: bytes, encoding: str, width: int) -> bool:
    text = head[: len(head) - len(head) % width].decode(encoding, errors="replace")
    good = sum(ch.isprintable() or ch in "\t\n\r" for ch in text)
    return bool(text) and good >= PRINTABLE_SHARE * len(text)


def _wide_encoding(head: bytes) -> str | None:
    """UTF-16 or UTF-32 without a byte-order mark: NULs fill the high byte lanes of ASCII."""
    lanes4 = _lane_nul_shares(head, 4)
    if min(lanes4[2], lanes4[3]) >= 0.9 and lanes4[0] < 0.5 and _mostly_printable(head, "utf-32-le", 4):
        return "UTF-32LE"
    if min(lanes4[0], lanes4[1]) >= 0.9 and lanes4[3] < 0.5 and _mostly_printable(head, "utf-32-be", 4):
        return "UTF-32BE"
    even, odd = _lane_nul_shares(head, 2)
    if odd >= WIDE_NUL_SHARE and even <= odd / 10 and _mostly_printable(head, "utf-16-le", 2):
        return "UTF-16LE"
    if even >= WIDE_NUL_SHARE and odd <= even / 10 and _mostly_printable(head, "utf-16-be", 2):
        return "UTF-16BE"
    return None


def _invalid_utf8_bytes(head: bytes) -> int:
    # Incremental and not final: a character cut at the end of the head is not an error.
    text = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape").decode(head, final=False)
    return len(_UNDECODABLE.findall(text))


def text_problem(head: bytes) -> TextProblem | None:
    """What is wrong with input that starts with ``head`` (its first :data:`SNIFF_BYTES`
    bytes), or None for UTF-8 text, with or without a UTF-8 byte-order mark.

    In order: a UTF-32/UTF-16 byte-order mark; a compressed or zip signature; UTF-16/32
    without a byte-order mark (NULs in every other byte lane and plausible text when decoded
    so); NUL or control bytes in binary proportions; mostly invalid UTF-8 (a legacy 8-bit
    encoding, or binary data).
    """
    head = head[:SNIFF_BYTES]
    for bom, encoding, iconv_name in _BYTE_ORDER_MARKS:
        if head.startswith(bom):
            return TextProblem(f"looks like {encoding} (byte-order mark {bom.hex(' ').upper()})", _convert(iconv_name))
    for signature, what, fix in _SIGNATURES:
        if signature.match(head) if isinstance(signature, re.Pattern) else head.startswith(signature):
            return TextProblem(f"looks like {what}", fix)
    if head.startswith(UTF8_BOM):
        head = head[len(UTF8_BOM) :]
    if not head:
        return None
    nuls = head.count(0)
    if nuls >= MIN_NULS:  # one NUL is a stray control character, not an encoding
        wide = _wide_encoding(head)
        if wide:
            return TextProblem(f"looks like {wide} without a byte-order mark", _convert(wide))
        if nuls >= NUL_SHARE * len(head):
            return TextProblem(
                f"looks like a binary file ({nuls} NUL bytes in its first {len(head):,} bytes)",
                "give a UTF-8 text file, one text per line",
            )
    controls = len(head) - len(head.translate(None, _CONTROL_BYTES))
    if controls >= MIN_CONTROLS and controls >= CONTROL_SHARE * len(head):
        return TextProblem(
            f"looks like a binary file ({controls} control bytes in its first {len(head):,} bytes)",
            "give a UTF-8 text file, one text per line",
        )
    invalid = _invalid_utf8_bytes(head)
    if invalid >= MIN_INVALID and invalid >= INVALID_SHARE * len(head):
        return TextProblem(
            f"is in another encoding or binary ({invalid} of its first {len(head):,} bytes are not valid UTF-8)",
            _convert("LATIN1") + " (use the file's real encoding: CP1252, EUC-KR, SHIFT-JIS, ...)",
        )
    return None


def check_text(head: bytes, name: str) -> None:
    """Raise :class:`NotTextError` naming ``name`` if ``head`` is not the start of UTF-8 text."""
    problem = text_problem(head)
    if problem is not None:
        raise NotTextError(name, problem)


def _read_head(stream: BinaryIO, size: int) -> bytes:
    """Up to ``size`` bytes; fewer only at the end of the stream (pipes deliver in pieces)."""
    chunks, total = [], 0
    while total < size:
        chunk = stream.read(size - total)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


class _ReplayedHead(io.RawIOBase):
    """The bytes already read for the check, then the rest of the stream. Closing it leaves
    the underlying stream open: whoever opened that closes it."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        super().__init__()
        self._head = memoryview(head)
        self._rest = rest
        self._read_rest = getattr(rest, "read1", rest.read)  # read1: no waiting for a full buffer

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._head:
            count = min(len(buffer), len(self._head))
            buffer[:count] = self._head[:count]
            self._head = self._head[count:]
            return count
        data = self._read_rest(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def checked_stream(stream: BinaryIO, name: str) -> BinaryIO:
    """``stream``, checked to hold UTF-8 text and without a UTF-8 byte-order mark.

    Reads :data:`SNIFF_BYTES` ahead (not the whole input), raises :class:`NotTextError`
    naming ``name`` (a path, or ``"-"`` for standard input) if they are not UTF-8 text, and
    returns a buffered binary stream that yields every byte from the start (the BOM
    excepted). Lines can be iterated from it as from ``open(path, "rb")``.
    """
    head = _read_head(stream, SNIFF_BYTES)
    check_text(head, name)
    if head.startswith(UTF8_BOM):
        head = head[len(UTF8_BOM) :]
    return io.BufferedReader(_ReplayedHead(head, stream), buffer_size=1 << 16)
