"""The Alembic migrations: their schema is the tables' schema, on SQLite and PostgreSQL; upgrading is
idempotent and safe when several processes start at once against one database."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, StaticPool, create_engine, inspect

from app.errors import StoreUnavailable
from app.store import migrations
from app.store.analyses import AnalysisStore
from app.store.db import make_engine
from app.store.tables import Base
from tests.conftest import sqlite_url
from tests.test_store import _analysis

ROOT = Path(__file__).resolve().parents[1]


def _differences(engine: Engine) -> list:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)


def _assert_migrated(engine: Engine) -> None:
    """The database is at the head revision and its schema equals the table classes'."""
    with engine.connect() as connection:
        assert migrations.current(connection) == migrations.head()
    assert _differences(engine) == []


def test_sqlite_schema_equals_the_tables(tmp_path):
    engine = make_engine(sqlite_url(tmp_path))
    assert _differences(engine) != []  # an empty database differs: the comparison can fail
    migrations.upgrade(engine)
    _assert_migrated(engine)


@pytest.mark.postgres
def test_postgres_schema_equals_the_tables(pg_url):
    engine = make_engine(pg_url.render_as_string(hide_password=False))
    migrations.upgrade(engine)
    _assert_migrated(engine)
    engine.dispose()


def test_upgrade_twice_changes_nothing_and_downgrade_removes_every_table(tmp_path):
    engine = make_engine(sqlite_url(tmp_path))
    migrations.upgrade(engine)
    migrations.upgrade(engine)
    _assert_migrated(engine)
    with engine.begin() as connection:
        command.downgrade(migrations.alembic_config(connection), "base")
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    migrations.upgrade(engine)
    _assert_migrated(engine)


def test_a_database_from_before_migrations_is_refused_with_a_clear_message(tmp_path):
    with sqlite3.connect(tmp_path / "store.db") as old:  # tables made without a migration record
        old.execute("CREATE TABLE jobs (id VARCHAR(32) PRIMARY KEY)")
    store = AnalysisStore(make_engine(sqlite_url(tmp_path)))
    with pytest.raises(StoreUnavailable, match=r"tables \(jobs\) but no migration record"):
        store.find("anything")


def test_the_store_migrates_an_in_memory_database_on_its_own_connection():
    """In memory, the database lives on one connection: the migration must run on that one."""
    for engine in (make_engine("sqlite://"), create_engine("sqlite://", poolclass=StaticPool)):
        store = AnalysisStore(engine)
        saved = store.save(_analysis())
        assert store.get(saved.id).text == saved.text
        _assert_migrated(engine)


# one replica starting: import, wait for the common start time, migrate (exit status 0 when it succeeded)
REPLICA = """
import sys, time
from app.errors import StoreUnavailable
from app.store import migrations
from app.store.db import make_engine
engine = make_engine(sys.argv[1])
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
migrations.upgrade(engine)
"""


def _replicas_start_at_once(url: str, count: int = 6) -> list[str]:
    """Migrate one database from ``count`` processes released together; what each failed one printed."""
    start = time.time() + 3.0  # after every process has imported the store
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", REPLICA, url, str(start)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(count)
    ]
    outputs = [process.communicate(timeout=120)[0] for process in processes]
    return [output for process, output in zip(processes, outputs, strict=True) if process.returncode != 0]


@pytest.mark.postgres
def test_replicas_starting_at_once_migrate_postgres_one_after_the_other(pg_url):
    """Without the advisory lock, concurrent CREATE TABLEs of one schema fail in all but one process."""
    url = pg_url.render_as_string(hide_password=False)
    assert _replicas_start_at_once(url) == []
    engine = make_engine(url)
    _assert_migrated(engine)
    engine.dispose()


def test_processes_starting_at_once_migrate_sqlite_one_after_the_other(tmp_path):
    assert _replicas_start_at_once(sqlite_url(tmp_path)) == []
    _assert_migrated(make_engine(sqlite_url(tmp_path)))
