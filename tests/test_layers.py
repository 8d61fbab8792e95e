"""Architecture rules from ARCHITECTURE.md, each as a small test."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app"


def _sources(folder: str) -> list[Path]:
    return sorted((APP / folder).rglob("*.py"))


def test_methods_do_not_import_fastapi():
    for path in _sources("methods"):
        assert not re.search(r"^\s*(from|import) (fastapi|starlette)", path.read_text(), re.M), path


def test_figures_import_no_torch():
    code = "import sys, app.figures; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], cwd=APP.parent).returncode == 0


def test_module_paths_live_only_in_the_adapters():
    pattern = re.compile(
        r"encoder\.layer|attention\.self|transformer\.layer|intermediate_act_fn|\.q_lin|sa_layer_norm"
    )
    offenders = [
        path for path in APP.rglob("*.py") if path.name != "adapters.py" and pattern.search(path.read_text())
    ]
    assert offenders == []


def test_routes_hold_no_tensor_code():
    for path in _sources("api"):
        assert "import torch" not in path.read_text(), path


def test_importing_and_building_the_app_loads_no_model():
    """The model loads in the lifespan, not at import or app creation: a bogus model path is harmless here."""
    code = "import app.cli; from app.main import create_app; create_app()"
    env = {"BERTSCOPE_MODEL": "/no/such/model", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=APP.parent, capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
