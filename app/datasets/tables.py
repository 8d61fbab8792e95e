"""TSV and CSV files with a header row, read row by row the way the readers read them.

TSV uses ``csv.QUOTE_NONE`` (quotes are ordinary characters, a text cannot hold a tab) and CSV
``csv.QUOTE_MINIMAL`` (a text with a comma is quoted), as :mod:`app.methods.evaluation.texts` does. Rows
that are empty or only whitespace are skipped (the readers skip them too); every other row has as many
fields as the header.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from app.datasets.columns import Columns, check_header, choose_columns, label_problem
from app.datasets.lines import decoded_lines
from app.datasets.summary import DatasetKind, DatasetSummary, RowCount
from app.errors import DatasetInvalid

_EXAMPLE_HEADER = {"\t": "the line 'text<TAB>label'", ",": "the line 'text,label'"}


class _Feed:
    """Hands csv.reader decoded lines and remembers the number of the last one handed out."""

    def __init__(self, lines: Iterator[tuple[int, str]]) -> None:
        self._lines = lines
        self.number = 0

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> str:
        self.number, text = next(self._lines)
        return text


def table_rows(path: Path, filename: str, delimiter: str) -> Iterator[tuple[int, int, list[str]]]:
    """``(first line, last line, fields)`` of every row (a quoted CSV field may span lines)."""
    feed = _Feed(decoded_lines(path, filename))
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader(feed, delimiter=delimiter, quoting=quoting)
    while True:
        start = feed.number + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise DatasetInvalid(
                filename, _csv_problem(str(error), start, feed.number), line=feed.number
            ) from None
        yield start, feed.number, row


def _csv_problem(message: str, start: int, end: int) -> str:
    if "field larger than field limit" in message:
        limit = csv.field_size_limit()
        opened = f" (a double quote opened on line {start} may not be closed)" if end > start else ""
        return f"a field is longer than {limit} characters, the most the readers accept{opened}."
    return f"this row cannot be read as CSV ({message})."


def validate_table(
    path: Path,
    filename: str,
    suffix: str,
    kind: DatasetKind | None,
    text_column: str | None,
    label_column: str | None,
    count: RowCount,
) -> DatasetSummary:
    """Check a ``.tsv``/``.csv`` file row by row and summarise it."""
    delimiter = "\t" if suffix == ".tsv" else ","
    rows = table_rows(path, filename, delimiter)
    header = next(((start, row) for start, _, row in rows if row), None)  # the readers skip empty rows
    if header is None:
        raise DatasetInvalid(
            filename, "the file is empty or has only blank lines; it needs a header row and rows."
        )
    header_line, names = header
    check_header(names, filename, header_line, _EXAMPLE_HEADER[delimiter])
    columns = choose_columns(names, filename, header_line, kind, text_column, label_column)
    for start, end, row in rows:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(names):
            raise DatasetInvalid(
                filename, _ragged(len(row), len(names), header_line, delimiter, start, end), line=start
            )
        _check_row(dict(zip(names, row, strict=True)), columns, filename, start, count)
    if count.rows == 0:
        raise DatasetInvalid(
            filename,
            f"the file has a header (line {header_line}) but no rows with a text in column {columns.text!r}.",
        )
    return DatasetSummary(
        kind=columns.kind,
        format=suffix,
        rows=count.rows,
        columns=names,
        text_column=columns.text,
        label_column=columns.label,
        labels=count.sorted_labels() if columns.label else [],
    )


def _check_row(row: dict[str, str], columns: Columns, filename: str, line: int, count: RowCount) -> None:
    text = row[columns.text].strip()
    if columns.label is None:
        if text:
            count.add()
        return
    if not text:
        raise DatasetInvalid(
            filename, "the text is empty; every labelled row needs a text.", line=line, column=columns.text
        )
    label = row[columns.label].strip()
    problem = label_problem(label)
    if problem:
        raise DatasetInvalid(filename, problem, line=line, column=columns.label)
    count.add(label)


def _ragged(fields: int, width: int, header_line: int, delimiter: str, start: int, end: int) -> str:
    problem = f"this row has {fields} fields but the header (line {header_line}) has {width}"
    if end > start:
        return (
            f'{problem}; the row runs on to line {end}: a double quote (") opened on line {start} may not be '
            "closed."
        )
    if delimiter == "\t":
        return f"{problem}; fields are separated by tabs, and a text cannot contain a tab."
    return f'{problem}; a text that contains a comma must be in double quotes ("like, this").'
