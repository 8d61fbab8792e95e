"""Ids of stored objects (analyses, heads, probe sets, indexes, runs, jobs), shared by every layer."""

from __future__ import annotations

import secrets


def new_id() -> str:
    """An unguessable, URL-safe id (72 random bits, 12 characters): the format of every stored object's id."""
    return secrets.token_urlsafe(9)
