"""Where templates, static files and the vendored Plotly.js live (installed wheel or source checkout)."""

from __future__ import annotations

from pathlib import Path

import plotly

PACKAGE_DIR = Path(__file__).resolve().parents[1]
PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"


def asset_dir(name: str) -> Path:
    """``templates`` or ``static``: inside the installed package (wheel) or at the source checkout root."""
    installed = PACKAGE_DIR / name
    return installed if installed.is_dir() else PACKAGE_DIR.parent / name
