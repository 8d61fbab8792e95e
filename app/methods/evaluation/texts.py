"""Read the texts of an evaluation data file: TSV/CSV with a named column, JSONL, or one text per line."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from app.errors import InvalidInput

# "utf-8-sig": a UTF-8 byte order mark at the start (as some editors write) is not part of the first header
ENCODING = "utf-8-sig"


def read_texts(path: str | Path, column: str | None = None, limit: int | None = None) -> list[str]:
    """The first ``limit`` non-empty texts of ``path``.

    ``.tsv``/``.csv`` need a header row (``column`` defaults to ``sentence``, then ``text``, then the
    first column; quotes are not special in TSV); ``.jsonl`` reads ``column`` (default ``sentence`` or
    ``text``) of each object; anything else is one text per line.
    """
    file = Path(path)
    if not file.is_file():
        raise InvalidInput(f"Data file {str(path)!r} does not exist.")
    suffix = file.suffix.lower()
    if suffix in {".tsv", ".csv"}:
        texts = _table_texts(file, column, "\t" if suffix == ".tsv" else ",")
    elif suffix == ".jsonl":
        texts = _jsonl_texts(file, column)
    else:
        texts = [line.strip() for line in file.read_text(encoding=ENCODING).splitlines()]
    texts = [text for text in texts if text and text.strip()]
    if not texts:
        raise InvalidInput(f"Data file {str(path)!r} holds no texts.")
    return texts[:limit] if limit else texts


def _pick_column(columns: list[str], column: str | None, path: Path) -> str:
    if column is not None:
        if column not in columns:
            raise InvalidInput(f"Column {column!r} is not in {path.name}; columns: {', '.join(columns)}.")
        return column
    return next((name for name in ("sentence", "text") if name in columns), columns[0])


def _table_texts(path: Path, column: str | None, delimiter: str) -> list[str]:
    with path.open(encoding=ENCODING, newline="") as handle:
        quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
        reader = csv.DictReader(handle, delimiter=delimiter, quoting=quoting)
        name = _pick_column(list(reader.fieldnames or []), column, path)
        return [row.get(name) or "" for row in reader]


def _jsonl_rows(path: Path) -> list[dict[str, Any]]:
    """The objects of a JSONL file; lines end at line ends only (a JSON string may hold U+2028)."""
    with path.open(encoding=ENCODING) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _cell(value: Any) -> str:
    """A JSONL value or table cell as text: null and missing are empty (a label 0 stays "0")."""
    return "" if value is None else str(value)


def _jsonl_texts(path: Path, column: str | None) -> list[str]:
    rows = _jsonl_rows(path)
    name = _pick_column(list(rows[0]) if rows else [], column, path)
    return [_cell(row.get(name)) for row in rows]


def read_labelled(
    path: str | Path,
    text_column: str | None = None,
    label_column: str | None = None,
    limit: int | None = None,
) -> tuple[list[str], list[str]]:
    """Texts and their labels (as strings) from a TSV/CSV with a header or a JSONL file.

    The label column defaults to ``label``; rows with an empty text or label are skipped.
    """
    file = Path(path)
    if not file.is_file():
        raise InvalidInput(f"Data file {str(path)!r} does not exist.")
    suffix = file.suffix.lower()
    if suffix in {".tsv", ".csv"}:
        with file.open(encoding=ENCODING, newline="") as handle:
            delimiter = "\t" if suffix == ".tsv" else ","
            quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
            reader = csv.DictReader(handle, delimiter=delimiter, quoting=quoting)
            rows = list(reader)
            columns = list(reader.fieldnames or [])
    elif suffix == ".jsonl":
        rows = _jsonl_rows(file)
        columns = list(rows[0]) if rows else []
    else:
        raise InvalidInput(f"{file.name}: labelled data must be .tsv, .csv or .jsonl with a header.")
    text_name = _pick_column(columns, text_column, file)
    label_name = _pick_column(columns, label_column or "label", file)
    pairs = [(_cell(row.get(text_name)).strip(), _cell(row.get(label_name)).strip()) for row in rows]
    pairs = [(text, label) for text, label in pairs if text and label][: limit or None]
    if not pairs:
        raise InvalidInput(f"{file.name} holds no labelled rows.")
    return [text for text, _ in pairs], [label for _, label in pairs]
