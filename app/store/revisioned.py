"""The lookup shared by the stores of things tied to one weights revision.

Fitted heads, probe sets, neuron indexes and description runs only apply to the model revision they were
made from, so each is found by revision: all of them (:meth:`RevisionedStore.list_for_revision`), the
newest, or the newest with a given id or name (:meth:`RevisionedStore.latest`), or by id alone
(:meth:`RevisionedStore.get`). A store names its table, how a row becomes the record it returns, and the
column that names a record; the queries are written once, here.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import ColumnElement, Engine, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.errors import NotFound
from app.store.db import session_scope

Record = TypeVar("Record")


class RevisionedStore(Generic[Record]):
    """Records of one table with ``id``, ``model_revision`` and ``created_at`` columns, by revision."""

    table: ClassVar[type]  # the row class
    what: ClassVar[str]  # what a record is, for messages ("fitted head")
    name_column: ClassVar[str | None] = "name"  # the column :meth:`latest` matches besides the id

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _session(self, write: bool = False) -> AbstractContextManager[Session]:
        """A session (one transaction when ``write``); database failures become ``StoreUnavailable``."""
        return session_scope(self.engine, write)

    def _record(self, row: Any) -> Record:
        """The record a row stands for (read inside its session)."""
        raise NotImplementedError

    def _listing_order(self) -> list[Any]:
        """How :meth:`list_for_revision` orders the records: newest first unless a store says otherwise."""
        return [self._column("created_at").desc()]

    def _column(self, name: str) -> InstrumentedAttribute:
        return getattr(self.table, name)

    def list_for_revision(self, revision: str) -> list[Record]:
        """Every record made from this weights revision."""
        query = (
            select(self.table)
            .where(self._column("model_revision") == revision)
            .order_by(*self._listing_order())
        )
        with self._session() as session:
            return [self._record(row) for row in session.scalars(query)]

    def count_for_revision(self, revision: str) -> int:
        """How many records this weights revision has (without reading them: cheap enough to poll)."""
        query = select(func.count()).select_from(self.table).where(self._column("model_revision") == revision)
        with self._session() as session:
            return int(session.scalar(query) or 0)

    def latest(self, revision: str, key: str | None = None) -> Record | None:
        """The newest record of this revision; with ``key``, the newest whose id or name is ``key``."""
        if not key:
            return self._newest(revision)
        matches: list[ColumnElement[bool]] = [self._column("id") == key]
        if self.name_column is not None:
            matches.append(self._column(self.name_column) == key)
        return self._newest(revision, or_(*matches))

    def _newest(self, revision: str, *where: ColumnElement[bool]) -> Record | None:
        query = (
            select(self.table)
            .where(self._column("model_revision") == revision, *where)
            .order_by(self._column("created_at").desc())
            .limit(1)
        )
        with self._session() as session:
            row = session.scalars(query).first()
            return None if row is None else self._record(row)

    def get(self, record_id: str) -> Record:
        """The record with this id, of whichever revision, or ``NotFound``."""
        with self._session() as session:
            row = session.get(self.table, record_id)
            if row is None:
                raise NotFound(self._missing(record_id))
            return self._record(row)

    def _missing(self, record_id: str) -> str:
        """The message of :meth:`get`'s ``NotFound``."""
        return f"No {self.what} with id {record_id!r}."
