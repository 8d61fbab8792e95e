"""Engine creation and the table schema."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, DateTime, Engine, Float, Integer, LargeBinary, String, Text, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from app.errors import StoreUnavailable


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
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=lambda: datetime.now(UTC))


def make_engine(url: str) -> Engine:
    """Create the engine (and the SQLite file's folder) and make sure the tables exist."""
    parsed = make_url(url)
    kwargs: dict = {"pool_pre_ping": True}
    if parsed.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


@contextmanager
def session_scope(engine: Engine, write: bool = False) -> Iterator[Session]:
    """A session (one transaction when ``write``); an unreachable database becomes ``StoreUnavailable``."""
    try:
        with Session(engine) as session:
            if write:
                with session.begin():
                    yield session
            else:
                yield session
    except OperationalError as exc:
        raise StoreUnavailable(f"The database is unavailable ({exc.orig.__class__.__name__}).") from None


def all_rows(engine: Engine, query: Any) -> list[Any]:
    """Every row a select returns, read in one session."""
    with session_scope(engine) as session:
        return list(session.scalars(query))


def create_tables(engine: Engine) -> None:
    """Create missing tables (idempotent)."""
    Base.metadata.create_all(engine)


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
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=lambda: datetime.now(UTC))


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
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=lambda: datetime.now(UTC))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=lambda: datetime.now(UTC))


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
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=lambda: datetime.now(UTC))


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
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=lambda: datetime.now(UTC))
