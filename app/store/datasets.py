"""Uploaded datasets in the store: a row per file (name, kind, hash, validation summary) and its content in
ordered chunks, written in one transaction (a crash mid-upload stores nothing) and read back piece by piece.

The same bytes of the same kind are one dataset: saving them again returns the stored one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.exc import IntegrityError

from app.errors import NotFound
from app.ids import new_id
from app.store.db import session_scope
from app.store.tables import DatasetChunkRow, DatasetRow

CHUNK_BYTES = 1 << 20  # a row per MiB: large files never sit whole in memory or in one parameter


@dataclass(frozen=True)
class NewDataset:
    """A validated file about to be stored."""

    name: str
    kind: str
    format: str
    filename: str  # as the user named it: shown, never used as a path
    sha256: str
    size_bytes: int
    rows: int
    summary: dict[str, Any]


@dataclass(frozen=True)
class DatasetInfo(NewDataset):
    """What the store knows about one stored dataset (its content stays in the chunks)."""

    id: str
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        body = {field.name: getattr(self, field.name) for field in fields(self)}
        return {**body, "ref": f"dataset:{self.id}", "created_at": self.created_at.isoformat()}


def _info(row: DatasetRow) -> DatasetInfo:
    return DatasetInfo(**{field.name: getattr(row, field.name) for field in fields(DatasetInfo)})


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    while chunk := handle.read(CHUNK_BYTES):
        yield chunk


class DatasetStore:
    """Save, list, fetch and delete uploaded datasets; write one out as a file for the readers."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def find(self, sha256: str, kind: str) -> DatasetInfo | None:
        """The stored dataset with these bytes and this kind, if any."""
        query = select(DatasetRow).where(DatasetRow.sha256 == sha256, DatasetRow.kind == kind)
        with session_scope(self.engine) as session:
            row = session.scalars(query).first()
            return _info(row) if row is not None else None

    def save(self, dataset: NewDataset, content: Path) -> tuple[DatasetInfo, bool]:
        """Store ``content`` (a file) as a dataset; ``(info, created)``: an identical dataset is reused."""
        existing = self.find(dataset.sha256, dataset.kind)
        if existing is not None:
            return existing, False
        row = DatasetRow(id=new_id(), **dataset.__dict__)
        try:
            with session_scope(self.engine, write=True) as session, content.open("rb") as handle:
                session.add(row)
                session.flush()
                for seq, chunk in enumerate(_chunks(handle)):
                    session.add(DatasetChunkRow(dataset_id=row.id, seq=seq, content=chunk))
                    session.flush()  # one chunk in memory at a time
                info = _info(row)
        except IntegrityError:  # the same file saved at the same moment by another request
            existing = self.find(dataset.sha256, dataset.kind)
            if existing is None:
                raise
            return existing, False
        return info, True

    def list(self, kind: str | None = None) -> list[DatasetInfo]:
        """Every dataset (of one kind), newest first."""
        query = select(DatasetRow).order_by(DatasetRow.created_at.desc())
        if kind is not None:
            query = query.where(DatasetRow.kind == kind)
        with session_scope(self.engine) as session:
            return [_info(row) for row in session.scalars(query)]

    def get(self, dataset_id: str) -> DatasetInfo:
        with session_scope(self.engine) as session:
            row = session.get(DatasetRow, dataset_id)
            if row is None:
                raise NotFound(f"No dataset {dataset_id!r}: upload the file again or pick one from the list.")
            return _info(row)

    def delete(self, dataset_id: str) -> None:
        """Remove a dataset and its content (one transaction)."""
        with session_scope(self.engine, write=True) as session:
            if session.get(DatasetRow, dataset_id) is None:
                raise NotFound(f"No dataset {dataset_id!r} to delete.")
            session.execute(delete(DatasetChunkRow).where(DatasetChunkRow.dataset_id == dataset_id))
            session.execute(delete(DatasetRow).where(DatasetRow.id == dataset_id))

    def count(self) -> int:
        with session_scope(self.engine) as session:
            return session.scalar(select(func.count()).select_from(DatasetRow)) or 0

    def write_file(self, dataset_id: str, folder: Path) -> Path:
        """The dataset's content as ``folder/<id>/<safe name><format>`` (written once, atomically; the file
        stem is the dataset's name so jobs that name results after their file name them after it)."""
        info = self.get(dataset_id)
        target = folder / info.id / f"{safe_stem(info.name)}{info.format}"
        if target.is_file() and target.stat().st_size == info.size_bytes:
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        query = (
            select(DatasetChunkRow.content)
            .where(DatasetChunkRow.dataset_id == dataset_id)
            .order_by(DatasetChunkRow.seq)
            .execution_options(yield_per=1)
        )
        descriptor, partial = tempfile.mkstemp(dir=target.parent, suffix=".part")
        try:
            with os.fdopen(descriptor, "wb") as handle, session_scope(self.engine) as session:
                for chunk in session.scalars(query):
                    handle.write(chunk)
            os.replace(partial, target)
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
        return target


def safe_stem(name: str) -> str:
    """A file-name stem made of the name's letters, digits, ``-``, ``_`` and ``.`` (nothing else survives)."""
    kept = "".join(char if char.isalnum() or char in "-_." else "_" for char in name).strip("._")
    return kept[:80] or "dataset"
