"""Persistence with SQLAlchemy: SQLite by default, PostgreSQL by URL."""
