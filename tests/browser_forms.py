"""Data fields of job forms in browser tests: upload a file, or (admins) name one on the server."""

from __future__ import annotations

from pathlib import Path

SERVER_FILE = "__path__"  # the picker's option for a file on the server (frontend/src/datasets.js)


def upload_file(page, field_id: str, path: Path, timeout: float = 30_000) -> str:
    """Upload ``path`` through the field's upload control; wait until the field picks the stored dataset."""
    page.set_input_files(f"#{field_id}-upload", str(path))
    page.wait_for_function(
        f"document.getElementById({field_id!r}).value.startsWith('dataset:')", timeout=timeout
    )
    return page.input_value(f"#{field_id}")


def server_file(page, field_id: str, path: Path | str) -> None:
    """Choose "a file on the server" in the field's picker and type the path."""
    page.select_option(f"#{field_id}", SERVER_FILE)
    page.fill(f"#{field_id}-path", str(path))
