"""Plain text files (one text per line), and telling CoNLL-U from plain text when a name has no suffix."""

from __future__ import annotations

import re
from pathlib import Path

from app.datasets.lines import decoded_lines, strip_ending
from app.datasets.summary import DatasetSummary, RowCount
from app.errors import DatasetInvalid

CONLLU_FIELDS = 10
CONLLU_ID = re.compile(r"[0-9]+(?:-[0-9]+|\.[0-9]+)?")  # word, multiword range (1-2), empty node (1.1)


def validate_plain(path: Path, filename: str, count: RowCount) -> DatasetSummary:
    """Count the non-blank texts; like :func:`app.methods.evaluation.texts.read_texts`, a text ends at any
    line break ``str.splitlines`` knows (form feeds and U+2028 included)."""
    for _, text in decoded_lines(path, filename):
        for piece in strip_ending(text).splitlines():
            if piece.strip():
                count.add()
    if count.rows == 0:
        raise DatasetInvalid(
            filename, "the file is empty or has only blank lines; it needs one text per line."
        )
    return DatasetSummary(kind="texts", format=".txt", rows=count.rows)


def sniff_format(path: Path, filename: str) -> str:
    """``.conllu`` when the first line that is neither blank nor a comment is a CoNLL-U word line, else
    ``.txt``."""
    for _, text in decoded_lines(path, filename):
        line = strip_ending(text)
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        return ".conllu" if len(fields) == CONLLU_FIELDS and CONLLU_ID.fullmatch(fields[0]) else ".txt"
    return ".txt"
