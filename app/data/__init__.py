"""Data the package ships as defaults, each file with a ``<file>.source.json`` beside it (origin, licence).

The About page lists every shipped file from these records, so a new default dataset is added by dropping
the file and its source record here; nothing else names them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent
SAMPLE_CORPUS = DATA_DIR / "sample_corpus.txt"
WIKIPEDIA_SAMPLE = DATA_DIR / "wikipedia_sample.txt"
UD_EWT_TRAIN_SLICE = DATA_DIR / "ud_ewt_train_slice.conllu"
UD_EWT_DEV_SLICE = DATA_DIR / "ud_ewt_dev_slice.conllu"
SOURCE_SUFFIX = ".source.json"


@dataclass(frozen=True)
class ShippedData:
    """One shipped data file and where it comes from."""

    file: str
    title: str
    source: str
    licence: str
    url: str
    note: str
    size_bytes: int


def shipped_data() -> list[ShippedData]:
    """Every shipped data file with its source record, sorted by file name."""
    entries = []
    for record in sorted(DATA_DIR.glob(f"*{SOURCE_SUFFIX}")):
        fields = json.loads(record.read_text(encoding="utf-8"))
        name = record.name.removesuffix(SOURCE_SUFFIX)
        size = (DATA_DIR / name).stat().st_size if (DATA_DIR / name).is_file() else 0
        entries.append(
            ShippedData(
                file=name,
                title=fields["title"],
                source=fields["source"],
                licence=fields["licence"],
                url=fields.get("url", ""),
                note=fields.get("note", ""),
                size_bytes=size,
            )
        )
    return entries
