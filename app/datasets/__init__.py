"""Validation of an uploaded data file before any job reads it.

:func:`validate_dataset` streams the file once (it is never held in memory whole), checks its encoding and
structure, and returns a :class:`DatasetSummary`, or raises :class:`DatasetInvalid` with the file, line and
column of the first problem, or :class:`DatasetTooLarge` past the row limit. What validates reads with the
project's readers: ``read_texts``/``read_labelled`` (tables, JSONL, plain text), ``read_conllu`` and
``read_corpus``, under the suffix given by :attr:`DatasetSummary.format`.

The user's file name is untrusted: only its suffix is used (to pick the format), and it appears in messages
as given, never as a path.
"""

from __future__ import annotations

import re
from pathlib import Path

from app.datasets.jsonl import validate_jsonl
from app.datasets.plain import sniff_format, validate_plain
from app.datasets.summary import FORMATS, KINDS, TABLE_FORMATS, DatasetKind, DatasetSummary, RowCount
from app.datasets.tables import validate_table
from app.datasets.treebank import validate_treebank
from app.errors import DatasetInvalid, DatasetTooLarge, InvalidInput

__all__ = [
    "FORMATS",
    "DatasetInvalid",
    "DatasetKind",
    "DatasetSummary",
    "DatasetTooLarge",
    "file_suffix",
    "validate_dataset",
]

ROWS_SETTING = "BERTSCOPE_MAX_DATASET_ROWS"
_FORMAT_NAMES = {
    ".txt": "plain text (one text per line)",
    ".tsv": "a TSV table",
    ".csv": "a CSV table",
    ".jsonl": "JSON Lines",
    ".conllu": "CoNLL-U",
}


def file_suffix(filename: str) -> str:
    """The lower-cased suffix of the last part of ``filename`` ('' when none); the name is never a path."""
    name = re.split(r"[/\\]", filename)[-1]
    stem, dot, suffix = name.rpartition(".")
    return f".{suffix.strip().lower()}" if dot and stem else ""


def validate_dataset(
    path: Path,
    filename: str,
    kind: DatasetKind | None = None,
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    max_rows: int,
    rows_setting: str = ROWS_SETTING,
) -> DatasetSummary:
    """Check the data file at ``path`` (uploaded as ``filename``) as ``kind`` (None: infer) and summarise it.

    The format comes from the suffix of ``filename`` (.txt, .tsv, .csv, .jsonl, .conllu); without a known
    one the content decides (CoNLL-U word lines, else plain text). ``kind=None`` is ``treebank`` for
    CoNLL-U, ``labelled`` for a table or JSONL file with a label column, else ``texts``.
    """
    if kind is not None and kind not in KINDS:
        raise InvalidInput(f"Unknown dataset kind {kind!r}; the kinds are: {', '.join(KINDS)}.")
    suffix = file_suffix(filename)
    sniffed = suffix not in FORMATS
    if path.stat().st_size == 0:
        raise DatasetInvalid(filename, "the file is empty (0 bytes).")
    fmt = sniff_format(path, filename) if sniffed else suffix
    _check_kind_fits(fmt, kind, filename, sniffed)
    named = next((name for name in (text_column, label_column) if name is not None), None)
    if named is not None and fmt not in TABLE_FORMATS:
        raise DatasetInvalid(
            filename,
            f"this file is {_FORMAT_NAMES[fmt]}: it has no named columns; leave column {named!r} unset.",
        )
    count = RowCount(filename, max_rows, rows_setting, "sentences" if fmt == ".conllu" else "rows")
    if fmt == ".conllu":
        return validate_treebank(path, filename, kind or "treebank", count)
    if fmt in (".tsv", ".csv"):
        return validate_table(path, filename, fmt, kind, text_column, label_column, count)
    if fmt == ".jsonl":
        return validate_jsonl(path, filename, kind, text_column, label_column, count)
    return validate_plain(path, filename, count)


def _check_kind_fits(fmt: str, kind: DatasetKind | None, filename: str, sniffed: bool) -> None:
    what = _FORMAT_NAMES[fmt] + (", judged by its content (the name has no known suffix)" if sniffed else "")
    if kind == "treebank" and fmt != ".conllu":
        raise DatasetInvalid(
            filename,
            f"a treebank must be a CoNLL-U file (.conllu, 10 tab-separated fields per word line); this file "
            f"is {what}.",
        )
    if kind == "labelled" and fmt not in TABLE_FORMATS:
        raise DatasetInvalid(
            filename,
            "labelled data must be a .tsv, .csv or .jsonl file with a text and a label column; this file is "
            f"{what}.",
        )
