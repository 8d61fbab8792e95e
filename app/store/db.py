"""Engine creation and the table schema."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import (
    JSON,
    DateTime,
    Engine,
    Float,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from app.errors import StoreUnavailable

log = logging.getLogger("bertscope.store")

# what a database that cannot be reached (down, cut off, its file missing) raises through SQLAlchemy
UNREACHABLE = (OperationalError, InterfaceError)
# seconds a PostgreSQL connection attempt may take before the request answers 503 (unless the URL says)
CONNECT_TIMEOUT_S = 5
# after a failed attempt to reach the database, how long requests answer 503 without trying again
RETRY_AFTER_S = 1.0


class UTCDateTime(TypeDecorator):
    """Timestamps stored with their zone and read back as UTC-aware datetimes on every backend (SQLite
    returns naive ones), so the API always writes ``+00:00``."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    """Declarative base of every bertscope table."""


class AnalysisRow(Base):
    """One stored analysis: what was asked, of which weights, and the result (a permalink target)."""

    __tablename__ = "analyses"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    cache_key: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    model_name: Mapped[str] = mapped_column(String(500))
    model_revision: Mapped[str] = mapped_column(String(64), index=True)
    model_info: Mapped[dict] = mapped_column(JSON)
    method: Mapped[str] = mapped_column(String(100))
    method_version: Mapped[int] = mapped_column(Integer)
    params: Mapped[dict] = mapped_column(JSON)
    target: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    text: Mapped[str] = mapped_column(Text)
    text_pair: Mapped[str | None] = mapped_column(Text, nullable=True)
    tokens: Mapped[list] = mapped_column(JSON)
    encoding: Mapped[dict] = mapped_column(JSON)
    result: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=lambda: datetime.now(UTC))


def make_engine(url: str) -> Engine:
    """Create the engine; nothing connects yet, so a database that is down does not stop the server.

    Tables are created on the first successful connection (:func:`ensure_ready`). The SQLite file's folder
    is created before every new connection, so a folder that appears later is picked up without a restart.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    kwargs: dict = {"pool_pre_ping": True}
    if backend == "sqlite":
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    elif parsed.get_driver_name() in ("psycopg", "psycopg2") and "connect_timeout" not in parsed.query:
        kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    engine = create_engine(url, **kwargs)
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
            folder = Path(parsed.database).expanduser().parent
            event.listen(engine, "do_connect", lambda *_: _make_folder(folder))
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass  # sqlite3 then fails to open the file, which reads as "database unavailable"


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def unavailable(exc: BaseException) -> StoreUnavailable:
    """The 503 error for a database that cannot be reached (``exc`` as SQLAlchemy raised it)."""
    cause = getattr(exc, "orig", None) or exc
    return StoreUnavailable(
        f"The database is unavailable: it cannot be reached right now ({cause.__class__.__name__}). "
        "Try again in a moment."
    )


class _Readiness:
    """Per engine: the tables known to exist and the start-up hooks still waiting for a connection."""

    def __init__(self) -> None:
        self.tables: frozenset[str] = frozenset()
        self.hooks: list[Callable[[], None]] = []
        self.running_in: int | None = None  # thread running the hooks (their own sessions pass straight on)
        self.failure: StoreUnavailable | None = None  # the last failed attempt to connect ...
        self.retry_at = 0.0  # ... repeated without trying again until then (time.monotonic())


_READINESS: WeakKeyDictionary[Engine, _Readiness] = WeakKeyDictionary()
_READINESS_LOCK = threading.RLock()


def _readiness(engine: Engine) -> _Readiness:
    with _READINESS_LOCK:
        return _READINESS.setdefault(engine, _Readiness())


def on_first_connection(engine: Engine, hook: Callable[[], None]) -> None:
    """Run ``hook`` once, right after the tables are first created, before any other session proceeds.

    Start-up work that needs the database (e.g. marking jobs of a dead process failed) goes here, so a
    server started while the database is down does it as soon as the database can be reached.
    A hook raising ``StoreUnavailable`` stays pending and runs again at the next attempt.
    """
    with _READINESS_LOCK:
        _readiness(engine).hooks.append(hook)


def is_ready(engine: Engine) -> bool:
    """Whether the tables exist and every start-up hook has run."""
    state = _readiness(engine)
    return state.tables == frozenset(Base.metadata.tables) and not state.hooks


def ensure_ready(engine: Engine) -> None:
    """Create missing tables and run pending start-up hooks; ``StoreUnavailable`` while unreachable."""
    state = _readiness(engine)
    if is_ready(engine):
        return
    with _READINESS_LOCK:
        if state.running_in == threading.get_ident():
            return
        tables = frozenset(Base.metadata.tables)
        if state.tables != tables:
            # requests queued here during an outage fail at once instead of each waiting for a timeout
            if state.failure is not None and time.monotonic() < state.retry_at:
                raise StoreUnavailable(state.failure.message)
            try:
                Base.metadata.create_all(engine)
                _add_missing_columns(engine)
            except UNREACHABLE as exc:
                state.failure, state.retry_at = unavailable(exc), time.monotonic() + RETRY_AFTER_S
                raise state.failure from None
            state.tables, state.failure = tables, None
        state.running_in = threading.get_ident()
        try:
            while state.hooks:
                try:
                    state.hooks[0]()
                except StoreUnavailable:
                    raise
                except Exception:  # a broken hook must not make every request fail
                    log.exception("start-up hook %r failed", state.hooks[0])
                state.hooks.pop(0)
        finally:
            state.running_in = None


def _add_missing_columns(engine: Engine) -> None:
    """Additive upgrades of a database made by an older version: nullable columns that an existing table
    lacks are added (``ALTER TABLE ... ADD COLUMN``); nothing is ever dropped or changed."""
    inspector = inspect(engine)
    with engine.begin() as connection:
        for table in Base.metadata.sorted_tables:
            present = {column["name"] for column in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in present and column.nullable:
                    kind = column.type.compile(dialect=engine.dialect)
                    connection.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}"))
                    log.warning("added column %s.%s (database from an older version)", table, column.name)


def _forget_tables(engine: Engine) -> None:
    """After a failure, check the tables again at the next use (the database may have been replaced)."""
    _readiness(engine).tables = frozenset()


@contextmanager
def session_scope(engine: Engine, write: bool = False) -> Iterator[Session]:
    """A session (one transaction when ``write``) on a ready database (:func:`ensure_ready`); an unreachable
    database becomes ``StoreUnavailable`` (HTTP 503)."""
    ensure_ready(engine)
    try:
        with Session(engine) as session:
            if write:
                with session.begin():
                    yield session
            else:
                yield session
    except UNREACHABLE as exc:
        _forget_tables(engine)
        raise unavailable(exc) from None


def check_connection(engine: Engine) -> None:
    """Raise ``StoreUnavailable`` unless the database answers now (for the health check)."""
    with session_scope(engine) as session:
        session.execute(text("SELECT 1"))


def all_rows(engine: Engine, query: Any) -> list[Any]:
    """Every row a select returns, read in one session."""
    with session_scope(engine) as session:
        return list(session.scalars(query))


class EvaluationRow(Base):
    """A finished evaluation (e.g. mixing faithfulness): its parameters and summary table."""

    __tablename__ = "evaluations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(50), index=True)
    model_name: Mapped[str] = mapped_column(String(500))
    model_revision: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict] = mapped_column(JSON)
    summary: Mapped[dict] = mapped_column(JSON)
    job_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=lambda: datetime.now(UTC))


class JobRow(Base):
    """Long work run in the background: status, progress and what it produced."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(50))
    params: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), index=True)  # queued running done failed cancelled
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(Text, default="")
    result_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=lambda: datetime.now(UTC))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=lambda: datetime.now(UTC))
    owner: Mapped[str | None] = mapped_column(String(200), nullable=True)  # the replica that runs it


class HeadRow(Base):
    """A logistic-regression head fitted on frozen pooled embeddings of one model revision."""

    __tablename__ = "heads"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    model_name: Mapped[str] = mapped_column(String(500))
    model_revision: Mapped[str] = mapped_column(String(64), index=True)
    labels: Mapped[list] = mapped_column(JSON)
    weights: Mapped[bytes] = mapped_column(LargeBinary)
    metrics: Mapped[dict] = mapped_column(JSON)
    params: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=lambda: datetime.now(UTC))


class ProbeRow(Base):
    """Structural probes of every layer trained on one treebank, with their metrics (one probe set)."""

    __tablename__ = "probes"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    model_name: Mapped[str] = mapped_column(String(500))
    model_revision: Mapped[str] = mapped_column(String(64), index=True)
    layers: Mapped[list] = mapped_column(JSON)
    rank: Mapped[int] = mapped_column(Integer)
    params: Mapped[dict] = mapped_column(JSON)
    metrics: Mapped[dict] = mapped_column(JSON)
    weights: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=lambda: datetime.now(UTC))
