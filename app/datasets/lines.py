"""An untrusted file as decoded lines, streamed: UTF-8 only, with the line and byte of the first bad byte.

Lines end at ``\\r\\n``, ``\\r`` or ``\\n`` (what the readers' text mode and the csv module split on) and keep
their ending, so the csv module sees exactly what it sees when a reader opens the file with ``newline=""``.
A UTF-8 byte order mark at the start is dropped (the readers open files as ``utf-8-sig``). Memory stays
bounded: the file is read in chunks and no line may be longer than :data:`MAX_LINE_BYTES`.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from app.errors import DatasetInvalid

CHUNK_BYTES = 1 << 16
MAX_LINE_BYTES = 1 << 20  # a text for a 512-token encoder is a few kB; longer lines are not data we can use
UTF8_BOM = b"\xef\xbb\xbf"
HEAD_BYTES = 4096
# characters that str.splitlines() (used by some readers) takes for line breaks besides \r and \n
EXTRA_LINE_BREAKS = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"

_SAVE_AS_UTF8 = "save it as UTF-8 (in most editors: Save as... > Encoding: UTF-8) and upload it again"


def decoded_lines(path: Path, filename: str) -> Iterator[tuple[int, str]]:
    """``(line number, text with its line ending)`` for every line of ``path``, checked as UTF-8 text."""
    with path.open("rb") as handle:
        _check_head(handle.read(HEAD_BYTES), filename)
        handle.seek(0)
        for number, raw in enumerate(_raw_lines(handle), start=1):
            start = len(UTF8_BOM) if number == 1 and raw.startswith(UTF8_BOM) else 0
            yield number, _decode(raw, start, number, filename)


def strip_ending(text: str) -> str:
    return text.rstrip("\r\n")


def _raw_lines(handle: BinaryIO) -> Iterator[bytes]:
    """Lines as bytes with their endings; a line still growing past the limit is yielded unfinished."""
    carry = b""
    while chunk := handle.read(CHUNK_BYTES):
        lines = (carry + chunk).splitlines(keepends=True)  # bytes split only at \r\n, \r and \n
        carry = b"" if lines[-1].endswith(b"\n") else lines.pop()  # a trailing \r may precede a \n
        yield from lines
        if len(carry) > MAX_LINE_BYTES:
            yield carry
            return
    if carry:
        yield carry


def _decode(raw: bytes, start: int, number: int, filename: str) -> str:
    nul = raw.find(b"\x00", start)
    if nul >= 0:
        raise DatasetInvalid(
            filename,
            "a NUL byte (0x00): this looks like a binary file, not text. Upload a UTF-8 text file.",
            line=number,
            byte=nul + 1,
        )
    too_long = len(raw) > MAX_LINE_BYTES
    try:
        if too_long:  # the line was cut anywhere: a character may be unfinished at the end
            codecs.getincrementaldecoder("utf-8")().decode(raw[start:], final=False)
        else:
            text = raw[start:].decode("utf-8")
    except UnicodeDecodeError as error:
        raise DatasetInvalid(
            filename,
            f"byte 0x{raw[start + error.start]:02X} is not valid UTF-8: the file is binary or in another "
            f"encoding (such as Windows-1252); {_SAVE_AS_UTF8}.",
            line=number,
            byte=start + error.start + 1,
        ) from None
    if too_long:
        raise DatasetInvalid(
            filename,
            f"the line is longer than {MAX_LINE_BYTES} bytes; a data file holds one short text (or row, or "
            "word) per line.",
            line=number,
        )
    return text


def _check_head(head: bytes, filename: str) -> None:
    """UTF-16/32 files, by their byte order mark or by NULs between ASCII characters."""
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        raise DatasetInvalid(filename, f"the file is UTF-32 text, not UTF-8; {_SAVE_AS_UTF8}.")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DatasetInvalid(
            filename,
            f"the file is UTF-16 text (it starts with a UTF-16 byte order mark), not UTF-8; {_SAVE_AS_UTF8}.",
        )
    even, odd = head[0::2], head[1::2][: len(head[0::2])]
    if len(odd) >= 2:
        for nuls, letters in ((odd, even), (even, odd)):
            text = sum(32 <= byte < 127 or byte in b"\t\n\r" for byte in letters)
            if nuls.count(0) >= 0.9 * len(nuls) and text >= 0.9 * len(letters):
                raise DatasetInvalid(
                    filename,
                    f"the file is UTF-16 text (every other byte is 0x00), not UTF-8; {_SAVE_AS_UTF8}.",
                )
