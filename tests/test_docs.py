"""Documentation stays complete: every method has a docstring, a README row, a page section and a figure."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from app.figures import FIGURES
from app.methods import METHODS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(METHODS))
def test_method_is_documented(name, client):
    method = METHODS[name]
    assert method.name == name
    module_doc = sys.modules[type(method).__module__].__doc__ or ""
    assert (type(method).__doc__ or "").strip(), f"{name} has no class docstring"
    assert any(str(year) in module_doc for year in range(2015, 2030)), (
        f"{name}'s module docstring cites no paper"
    )
    assert f"| `{name}` | {method.kind} |" in README, f"README's method table has no row for {name}"
    assert f'id="method-{name}"' in client.get("/about").text
    assert name in FIGURES, f"no figure for {name}"
