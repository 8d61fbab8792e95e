"""Alembic's environment: runs the migrations on the connection :func:`app.store.migrations.upgrade` hands it.

There is no ``alembic.ini`` and no URL here: the store opens the connection (and, on PostgreSQL, holds the
advisory lock) and passes it in ``config.attributes["connection"]``, so the migrations run inside the
store's own transaction, on the very connection an in-memory SQLite database lives on.
"""

from __future__ import annotations

from alembic import context

from app.store.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "bertscope's migrations need a connection: run them through app.store.migrations "
        "(python -m app.store.migrations --help), not the alembic command."
    )
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
