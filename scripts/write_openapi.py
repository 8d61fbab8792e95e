"""Write the app's OpenAPI schema to ``docs/openapi.json`` (linked by the docs, checked by the tests).

    .venv/bin/python scripts/write_openapi.py

Run it after changing a route, a request or a response model, and commit the file. Building the app loads no
model; the schema does not depend on the settings.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OPENAPI = ROOT / "docs" / "openapi.json"


def schema_text(schema: dict) -> str:
    """The file's canonical form: sorted keys, so that moving a route between modules changes nothing."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from app.main import create_app
    from app.settings import Settings

    with tempfile.TemporaryDirectory() as directory:
        settings = Settings(
            database_url=f"sqlite:///{directory}/unused.db",
            index_sample_on_start=False,
            train_probes_on_start=False,
        )
        schema = create_app(settings).openapi()
    OPENAPI.write_text(schema_text(schema), encoding="utf-8")
    print(f"wrote {OPENAPI.relative_to(ROOT)} ({len(schema['paths'])} paths)")


if __name__ == "__main__":
    main()
