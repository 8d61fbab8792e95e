"""Which columns of a table or JSONL file hold the texts and labels, as the readers choose them.

The text column is the one named, else ``sentence``, else ``text``, else the first column; the label column
is the one named, else ``label`` (:func:`app.methods.evaluation.texts.read_labelled`). Labels are class
indices: integers 0, 1, ... written without leading zeros (the readers keep labels as strings, so ``01`` and
``1`` would be two classes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.datasets.summary import DatasetKind
from app.errors import DatasetInvalid

DEFAULT_TEXT_COLUMNS = ("sentence", "text")
DEFAULT_LABEL_COLUMN = "label"
_DIGITS = re.compile(r"[0-9]+")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]*)?")


@dataclass(frozen=True)
class Columns:
    """The chosen columns of a file and the kind it is validated as."""

    names: list[str]
    kind: DatasetKind
    text: str
    label: str | None


def choose_columns(
    names: list[str],
    filename: str,
    line: int,
    kind: DatasetKind | None,
    text_column: str | None,
    label_column: str | None,
) -> Columns:
    """Pick the text and label columns among ``names`` (the header at ``line``) for ``kind`` (None: infer)."""
    listed = ", ".join(repr(name) for name in names)
    if text_column is not None and text_column not in names:
        raise DatasetInvalid(
            filename,
            f"no column {text_column!r}; the columns are: {listed}. Name the text column.",
            line=line,
        )
    text = text_column or next((name for name in DEFAULT_TEXT_COLUMNS if name in names), names[0])
    label = label_column or DEFAULT_LABEL_COLUMN
    if kind == "texts":
        return Columns(names, "texts", text, None)
    if label not in names and (kind == "labelled" or label_column is not None):
        raise DatasetInvalid(
            filename,
            f"labelled data needs a label column: there is no column {label!r}; the columns are: {listed}. "
            "Name the label column.",
            line=line,
        )
    if label not in names:
        return Columns(names, "texts", text, None)
    if label == text:
        raise DatasetInvalid(
            filename,
            f"column {text!r} cannot be both the text and the label column; name the text column.",
            line=line,
        )
    return Columns(names, "labelled", text, label)


def check_header(names: list[str], filename: str, line: int, example: str) -> None:
    """A header names every column once and does not look like a row of data."""
    if not any(name.strip() for name in names):
        raise DatasetInvalid(
            filename,
            f"the header row is blank; the first row must name the columns, e.g. {example}.",
            line=line,
        )
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DatasetInvalid(
                filename, f"the header names column {name!r} twice; name each column once.", line=line
            )
        seen.add(name)
    number = next((name for name in names if _NUMBER.fullmatch(name.strip())), None)
    if number is not None:
        raise DatasetInvalid(
            filename,
            f"the first row looks like data, not a header: its cell {number!r} is a number. The file needs a "
            f"header row naming its columns, e.g. {example}.",
            line=line,
        )


def label_problem(label: str) -> str | None:
    """Why ``label`` (already stripped) is not a class index, or None when it is one."""
    if not label:
        return "the label is empty; every row needs a label (an integer 0, 1, ...)."
    if label.startswith("-") and _DIGITS.fullmatch(label[1:]):
        return f"label {label!r} is negative; labels are class numbers 0, 1, ..."
    if not _DIGITS.fullmatch(label):
        return f"label {label!r} is not an integer; labels must be integers 0, 1, ..."
    if label != str(int(label)):
        return f"label {label!r} has a leading zero; write it as {int(label)} (labels are compared as text)."
    return None
