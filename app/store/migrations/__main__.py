"""Write a new migration: ``python -m app.store.migrations revision "what changed" [--url URL]``.

Alembic compares the tables of :mod:`app.store.tables` with a database at the current head (a scratch
SQLite file unless ``--url`` names one) and writes the difference to ``versions/``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from alembic import command
from sqlalchemy import create_engine

from app.store.migrations import alembic_config, upgrade


def main() -> None:
    """Parse the command line and write the revision."""
    parser = argparse.ArgumentParser(prog="python -m app.store.migrations", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    revision = commands.add_parser("revision", help="autogenerate a revision from the table classes")
    revision.add_argument("message", help="what the revision changes, in a few words")
    revision.add_argument("--url", help="a database to compare with (default: a scratch SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        engine = create_engine(args.url or f"sqlite:///{Path(scratch) / 'scratch.db'}")
        upgrade(engine)
        with engine.begin() as connection:
            command.revision(alembic_config(connection), args.message, autogenerate=True)
        engine.dispose()


if __name__ == "__main__":
    main()
