"""What a validated data file holds: its kind, format, size and columns, and a running count of its rows."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from app.errors import DatasetTooLarge

DatasetKind = Literal["texts", "labelled", "treebank"]
KINDS: tuple[DatasetKind, ...] = ("texts", "labelled", "treebank")
TABLE_FORMATS = (".tsv", ".csv", ".jsonl")
FORMATS = (".txt", *TABLE_FORMATS, ".conllu")  # the suffixes the project's readers dispatch on


@dataclass(frozen=True)
class DatasetSummary:
    """A data file that the project's readers can read: ``rows`` are texts, labelled rows or sentences."""

    kind: DatasetKind
    format: str
    rows: int
    columns: list[str] = field(default_factory=list)  # header columns / JSONL keys; empty for .txt, .conllu
    text_column: str | None = None
    label_column: str | None = None
    labels: list[str] = field(default_factory=list)  # distinct labels sorted numerically (labelled only)
    words: int | None = None  # words of a treebank

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class RowCount:
    """Counts rows as they stream past and stops at the first one over the limit (never counts the rest)."""

    def __init__(self, filename: str, limit: int, setting: str, unit: str = "rows") -> None:
        self.filename, self.limit, self.setting, self.unit = filename, limit, setting, unit
        self.rows = 0
        self.labels: set[str] = set()

    def add(self, label: str | None = None) -> None:
        self.rows += 1
        if self.rows > self.limit:
            raise DatasetTooLarge(self.filename, self.limit, self.unit, self.setting)
        if label is not None:
            self.labels.add(label)

    def sorted_labels(self) -> list[str]:
        return sorted(self.labels, key=int)
