"""Stored analyses: the permalink store and the runner's cache."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from app.errors import NotFound
from app.ids import new_id
from app.store.codec import pack, unpack
from app.store.db import session_scope
from app.store.tables import AnalysisRow


@dataclass
class StoredAnalysis:
    """One analysis as stored: inputs, model identity, method and result."""

    model: dict
    method: str
    method_version: int
    params: dict
    target: dict | None
    text: str
    text_pair: str | None
    tokens: list[str]
    encoding: dict
    result: dict[str, Any]
    cache_key: str
    id: str = ""
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def url(self) -> str:
        return f"/a/{self.id}"


class AnalysisStore:
    """Save and fetch analyses; every database failure becomes a clear ``StoreUnavailable``."""

    def __init__(self, engine: Engine, recent: int = 8) -> None:
        self.engine = engine
        # stored analyses never change, so the last few read stay decoded for fast view changes
        self._recent: OrderedDict[str, StoredAnalysis] = OrderedDict()
        self._recent_size = recent
        self._recent_lock = threading.Lock()

    def save(self, analysis: StoredAnalysis) -> StoredAnalysis:
        """Insert ``analysis`` with a fresh id; if an identical one was stored meanwhile, return that."""
        try:
            analysis.id = new_id()
            with session_scope(self.engine, write=True) as session:
                session.add(_to_row(analysis))
            return analysis
        except IntegrityError:
            existing = self.find(analysis.cache_key)
            if existing is None:
                raise
            return existing

    def find(self, cache_key: str) -> StoredAnalysis | None:
        """The analysis stored under this cache key, if any."""
        return self._one(select(AnalysisRow).where(AnalysisRow.cache_key == cache_key))

    def get(self, analysis_id: str) -> StoredAnalysis:
        """The analysis with this id, or ``NotFound``."""
        with self._recent_lock:
            if analysis_id in self._recent:
                self._recent.move_to_end(analysis_id)
                return self._recent[analysis_id]
        found = self._one(select(AnalysisRow).where(AnalysisRow.id == analysis_id))
        if found is None:
            raise NotFound(f"No stored analysis with id {analysis_id!r}.")
        with self._recent_lock:
            self._recent[analysis_id] = found
            while len(self._recent) > self._recent_size:
                self._recent.popitem(last=False)
        return found

    def _one(self, query: Any) -> StoredAnalysis | None:
        with session_scope(self.engine) as session:
            row = session.scalars(query).first()
            return None if row is None else _from_row(row)


def _to_row(analysis: StoredAnalysis) -> AnalysisRow:
    return AnalysisRow(
        id=analysis.id,
        cache_key=analysis.cache_key,
        model_name=analysis.model["name"],
        model_revision=analysis.model["revision"],
        model_info=analysis.model,
        method=analysis.method,
        method_version=analysis.method_version,
        params=analysis.params,
        target=analysis.target,
        text=analysis.text,
        text_pair=analysis.text_pair,
        tokens=analysis.tokens,
        encoding=analysis.encoding,
        result=pack(analysis.result),
        created_at=analysis.created_at,
    )


def _from_row(row: AnalysisRow) -> StoredAnalysis:
    return StoredAnalysis(
        id=row.id,
        cache_key=row.cache_key,
        model=row.model_info,
        method=row.method,
        method_version=row.method_version,
        params=row.params,
        target=row.target,
        text=row.text,
        text_pair=row.text_pair,
        tokens=row.tokens,
        encoding=row.encoding,
        result=unpack(row.result),
        created_at=row.created_at,
    )
