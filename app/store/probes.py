"""Trained structural probe sets in the store (weights + metrics, tied to one model revision)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, or_, select

from app.errors import NotFound
from app.methods.probes.probe_set import ProbeSet
from app.store.codec import pack, unpack
from app.store.db import ProbeRow, all_rows, session_scope


class ProbeStore:
    """Save and look up probe sets; a probe set only applies to the revision it was trained on."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def save(self, probes: ProbeSet) -> ProbeSet:
        row = ProbeRow(
            id=probes.id,
            name=probes.name,
            model_name=probes.model_name,
            model_revision=probes.model_revision,
            layers=probes.layers,
            rank=probes.rank,
            params=probes.params,
            metrics=probes.metrics,
            weights=pack({"distance": probes.distance, "depth": probes.depth}),
            created_at=probes.created_at,
        )
        with session_scope(self.engine, write=True) as session:
            session.add(row)
        return probes

    def for_revision(self, revision: str) -> list[ProbeSet]:
        query = (
            select(ProbeRow).where(ProbeRow.model_revision == revision).order_by(ProbeRow.created_at.desc())
        )
        return [_probe_set(row) for row in self._rows(query)]

    def find(self, key: str | None, revision: str) -> ProbeSet:
        """A probe set by id or name (newest of that name), or the newest of all when ``key`` is None."""
        query = select(ProbeRow).where(ProbeRow.model_revision == revision)
        if key:
            query = query.where(or_(ProbeRow.id == key, ProbeRow.name == key))
        rows = self._rows(query.order_by(ProbeRow.created_at.desc()).limit(1))
        if not rows:
            what = f"probe set {key!r}" if key else "trained probe set"
            raise NotFound(
                f"No {what} for the loaded model: train one with 'bertscope probe train' "
                "or from the Probes page."
            )
        return _probe_set(rows[0])

    def _rows(self, query: Any) -> list[ProbeRow]:
        return all_rows(self.engine, query)


def _probe_set(row: ProbeRow) -> ProbeSet:
    arrays = unpack(row.weights)
    return ProbeSet(
        name=row.name,
        model_name=row.model_name,
        model_revision=row.model_revision,
        layers=[int(layer) for layer in row.layers],
        distance=arrays["distance"],
        depth=arrays["depth"],
        params=row.params,
        metrics=row.metrics,
        id=row.id,
        created_at=row.created_at,
    )
