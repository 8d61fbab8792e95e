"""Engines, sessions and readiness: the schema brought up to date (by migration) at the first connection."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from app.errors import StoreUnavailable
from app.store import migrations

log = logging.getLogger("bertscope.store")

# what a database that cannot be reached (down, cut off, its file missing) raises through SQLAlchemy
UNREACHABLE = (OperationalError, InterfaceError)
# seconds a PostgreSQL connection attempt may take before the request answers 503 (unless the URL says)
CONNECT_TIMEOUT_S = 5
# after a failed attempt to reach the database, how long requests answer 503 without trying again
RETRY_AFTER_S = 1.0


def make_engine(url: str) -> Engine:
    """Create the engine; nothing connects yet, so a database that is down does not stop the server.

    The schema is migrated on the first successful connection (:func:`ensure_ready`). The SQLite file's
    folder is created before every new connection, so a folder that appears later is picked up without a
    restart.
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
    """Per engine: whether the schema is known to be up to date, and the start-up hooks still waiting."""

    def __init__(self) -> None:
        self.migrated = False
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
    """Run ``hook`` once, right after the schema is first brought up to date, before any other session
    proceeds.

    Start-up work that needs the database (e.g. marking jobs of a dead process failed) goes here, so a
    server started while the database is down does it as soon as the database can be reached.
    A hook raising ``StoreUnavailable`` stays pending and runs again at the next attempt.
    """
    with _READINESS_LOCK:
        _readiness(engine).hooks.append(hook)


def is_ready(engine: Engine) -> bool:
    """Whether the schema is up to date and every start-up hook has run."""
    state = _readiness(engine)
    return state.migrated and not state.hooks


def ensure_ready(engine: Engine) -> None:
    """Migrate the schema to the newest revision and run pending start-up hooks; ``StoreUnavailable``
    while the database is unreachable."""
    state = _readiness(engine)
    if is_ready(engine):
        return
    with _READINESS_LOCK:
        if state.running_in == threading.get_ident():
            return
        if not state.migrated:
            # requests queued here during an outage fail at once instead of each waiting for a timeout
            if state.failure is not None and time.monotonic() < state.retry_at:
                raise StoreUnavailable(state.failure.message)
            try:
                migrations.upgrade(engine)
            except UNREACHABLE as exc:
                state.failure, state.retry_at = unavailable(exc), time.monotonic() + RETRY_AFTER_S
                raise state.failure from None
            state.migrated, state.failure = True, None
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


def _forget_schema(engine: Engine) -> None:
    """After a failure, check the schema again at the next use (the database may have been replaced)."""
    _readiness(engine).migrated = False


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
        _forget_schema(engine)
        raise unavailable(exc) from None


def check_connection(engine: Engine) -> None:
    """Raise ``StoreUnavailable`` unless the database answers now (for the health check)."""
    with session_scope(engine) as session:
        session.execute(text("SELECT 1"))
