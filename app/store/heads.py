"""Fitted heads in the store."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, or_, select

from app.errors import NotFound
from app.modeling.heads import FittedHead
from app.store.codec import pack, unpack
from app.store.db import HeadRow, all_rows, session_scope


class HeadStore:
    """Save and look up fitted heads; a head only applies to the weights revision it was fitted on."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def save(self, head: FittedHead) -> FittedHead:
        row = HeadRow(
            id=head.id,
            name=head.name,
            model_name=head.model_name,
            model_revision=head.model_revision,
            labels=head.labels,
            weights=pack({"weight": head.weight, "bias": head.bias}),
            metrics=head.metrics,
            params=head.params,
            created_at=head.created_at,
        )
        with session_scope(self.engine, write=True) as session:
            session.add(row)
        return head

    def for_revision(self, revision: str) -> list[FittedHead]:
        query = select(HeadRow).where(HeadRow.model_revision == revision).order_by(HeadRow.created_at.desc())
        return [_head(row) for row in self._rows(query)]

    def find(self, key: str, revision: str) -> FittedHead:
        """A head by id or name (newest of that name) fitted on this revision."""
        query = (
            select(HeadRow)
            .where(HeadRow.model_revision == revision)
            .where(or_(HeadRow.id == key, HeadRow.name == key))
            .order_by(HeadRow.created_at.desc())
        )
        rows = self._rows(query)
        if not rows:
            raise NotFound(
                f"No fitted head {key!r} for the loaded model (fit one with 'bertscope heads fit')."
            )
        return _head(rows[0])

    def _rows(self, query: Any) -> list[HeadRow]:
        return all_rows(self.engine, query)


def _head(row: HeadRow) -> FittedHead:
    arrays = unpack(row.weights)
    return FittedHead(
        name=row.name,
        model_name=row.model_name,
        model_revision=row.model_revision,
        labels=list(row.labels),
        weight=arrays["weight"],
        bias=arrays["bias"],
        metrics=row.metrics,
        params=row.params,
        id=row.id,
        created_at=row.created_at,
    )
