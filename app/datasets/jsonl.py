"""JSON Lines files: every non-blank line one JSON object; the first object's keys are the columns.

Texts are JSON strings; labels are JSON integers (``0``) or strings of one (``"0"``), as
:func:`app.methods.evaluation.texts.read_labelled` turns them into the strings ``"0"``, ``"1"``, ...
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from app.datasets.columns import Columns, choose_columns, label_problem
from app.datasets.lines import decoded_lines
from app.datasets.summary import DatasetKind, DatasetSummary, RowCount
from app.errors import DatasetInvalid

_EXAMPLE = 'one JSON object such as {"text": "A fine film.", "label": 1}'
_JSON_TYPES = {dict: "an object", list: "a list", str: "a string", bool: "true or false", type(None): "null"}


def _json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), "a number")


def _parse(text: str, filename: str, line: int) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise DatasetInvalid(
            filename,
            f"not valid JSON ({error.msg} at character {error.colno}); each line must be {_EXAMPLE}.",
            line=line,
        ) from None
    except RecursionError:
        raise DatasetInvalid(
            filename, f"the JSON is nested too deeply; each line must be {_EXAMPLE}.", line=line
        ) from None
    if not isinstance(value, dict):
        raise DatasetInvalid(
            filename,
            f"this line holds {_json_type(value)}, not an object; each line must be {_EXAMPLE}.",
            line=line,
        )
    return value


def validate_jsonl(
    path: Path,
    filename: str,
    kind: DatasetKind | None,
    text_column: str | None,
    label_column: str | None,
    count: RowCount,
) -> DatasetSummary:
    """Check a ``.jsonl`` file line by line and summarise it."""
    columns: Columns | None = None
    for line, text in decoded_lines(path, filename):
        if not text.strip():
            continue
        row = _parse(text, filename, line)
        if columns is None:
            if not row:
                raise DatasetInvalid(
                    filename, f"the first object has no keys; each line must be {_EXAMPLE}.", line=line
                )
            columns = choose_columns(list(row), filename, line, kind, text_column, label_column)
        _check_row(row, columns, filename, line, count)
    if columns is None:
        raise DatasetInvalid(
            filename, f"the file is empty or has only blank lines; each line must be {_EXAMPLE}."
        )
    if count.rows == 0:
        raise DatasetInvalid(filename, f"no object has a text under {columns.text!r}.")
    return DatasetSummary(
        kind=columns.kind,
        format=".jsonl",
        rows=count.rows,
        columns=columns.names,
        text_column=columns.text,
        label_column=columns.label,
        labels=count.sorted_labels() if columns.label else [],
    )


def _check_row(row: dict[str, Any], columns: Columns, filename: str, line: int, count: RowCount) -> None:
    text = row.get(columns.text)
    if text is not None and not isinstance(text, str):
        raise DatasetInvalid(
            filename, f"the text is {_json_type(text)}, not a string.", line=line, column=columns.text
        )
    if columns.label is None:
        if text and text.strip():
            count.add()
        return
    if not (text and text.strip()):
        raise DatasetInvalid(
            filename,
            "the text is missing or empty; every labelled row needs a text.",
            line=line,
            column=columns.text,
        )
    label = _label(row.get(columns.label), filename, line, columns.label)
    count.add(label)


def _label(value: Any, filename: str, line: int, column: str) -> str:
    if value is None:
        raise DatasetInvalid(
            filename,
            "the label is missing; every row needs a label (an integer 0, 1, ...).",
            line=line,
            column=column,
        )
    if isinstance(value, int) and not isinstance(value, bool):
        label = str(value)
    elif isinstance(value, str):
        label = value.strip()
    else:
        label = json.dumps(value)
        if isinstance(value, float | bool):
            raise DatasetInvalid(
                filename,
                f"label {label} is not an integer; labels must be integers 0, 1, ...",
                line=line,
                column=column,
            )
        raise DatasetInvalid(
            filename, f"the label is {_json_type(value)}, not an integer 0, 1, ...", line=line, column=column
        )
    problem = label_problem(label)
    if problem:
        raise DatasetInvalid(filename, problem, line=line, column=column)
    return label
