"""Documentation stays complete and current.

Every method has a docstring citing its paper, a README row, a section on its family page of the docs site, a
section on the About page and a figure; every setting has a description and a row on the generated
configuration page; the committed ``docs/openapi.json`` is the app's schema; the README stays short and its
links resolve. (``mkdocs build --strict``, run by ``scripts/test.sh``, checks the site's links, anchors,
snippets and images.)
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

from app.figures import FIGURES
from app.main import create_app
from app.methods import METHODS
from app.settings import Settings
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = (ROOT / "README.md").read_text(encoding="utf-8")
README_LIMIT = 12 * 1024  # bytes: the README says what bertscope is and links to the docs for the rest

# the docs page that says what exactly each kind of method computes
FAMILY_PAGES = {"mixing": "mixing.md", "attribution": "attribution.md", "probe": "probes.md"}


def _settings_hook() -> ModuleType:
    """The MkDocs hook that renders the configuration table (a file under docs/, not a package)."""
    return _hook("settings_table")


def _hook(name: str) -> ModuleType:
    path = DOCS / "hooks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"{name}_hook", path)
    assert spec and spec.loader, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
    assert method.kind in FAMILY_PAGES, f"no docs page for methods of kind {method.kind!r}: add one"
    page = (DOCS / FAMILY_PAGES[method.kind]).read_text(encoding="utf-8")
    heading = re.compile(rf"^#{{2,4}} `{re.escape(name)}`\s*$", re.MULTILINE)
    assert heading.search(page), f"docs/{FAMILY_PAGES[method.kind]} has no section '`{name}`'"
    assert f'id="method-{name}"' in client.get("/about").text
    assert method.result_type.__name__ in FIGURES, f"no figure for {name}'s results"


def test_docs_include_the_readme_method_table():
    start, end = "<!-- --8<-- [start:methods] -->", "<!-- --8<-- [end:methods] -->"
    assert start in README and end in README
    table = README[README.index(start) : README.index(end)]
    assert all(f"| `{name}` |" in table for name in METHODS)
    assert '--8<-- "README.md:methods"' in (DOCS / "methods.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", list(Settings.model_fields))
def test_setting_is_on_the_generated_configuration_page(name):
    field = Settings.model_fields[name]
    assert (field.description or "").strip(), f"Settings.{name} needs a description= (app/settings.py)"
    hook = _settings_hook()
    variable = f"BERTSCOPE_{name.upper()}"
    assert hook.env_name(name) == variable
    rows = [line for line in hook.settings_table().splitlines() if line.startswith(f"| `{variable}` |")]
    assert len(rows) == 1, f"{variable} is not on the configuration page"
    assert field.description.replace("|", "\\|") in rows[0]


def test_configuration_page_is_generated_at_build_time():
    hook = _settings_hook()
    assert hook.MARKER in (DOCS / hook.PAGE).read_text(encoding="utf-8")
    assert "docs/hooks/settings_table.py" in (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    page = type("Page", (), {"file": type("File", (), {"src_uri": hook.PAGE})()})()
    rendered = hook.on_page_markdown(f"# Configuration\n\n{hook.MARKER}\n", page=page)
    assert hook.MARKER not in rendered
    assert rendered.count("\n| `BERTSCOPE_") == len(Settings.model_fields)
    with pytest.raises(ValueError, match="marker"):
        hook.on_page_markdown("# Configuration\n", page=page)


def test_cli_reference_is_generated_at_build_time():
    """Every command and every option of ``bertscope`` is on the CLI page, rendered from click itself."""
    import click

    from app.cli import main

    hook = _hook("cli_reference")
    assert hook.MARKER in (DOCS / hook.PAGE).read_text(encoding="utf-8")
    assert "docs/hooks/cli_reference.py" in (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    page = type("Page", (), {"file": type("File", (), {"src_uri": hook.PAGE})()})()
    rendered = hook.on_page_markdown(f"# CLI\n\n{hook.MARKER}\n", page=page)
    for path, command in hook._commands(main):
        assert f"### `bertscope {' '.join(path)}`" in rendered
        for parameter in command.params:
            if isinstance(parameter, click.Option):
                assert f"`{parameter.opts[-1]}`" in rendered, (path, parameter.opts)
    assert "### `bertscope probe train`" in rendered and "`--topological-epochs`" in rendered
    with pytest.raises(ValueError, match="marker"):
        hook.on_page_markdown("# CLI\n", page=page)


def test_committed_openapi_schema_is_the_apps(tmp_path):
    committed = json.loads((DOCS / "openapi.json").read_text(encoding="utf-8"))
    served = json.loads(json.dumps(create_app(make_settings(tmp_path)).openapi()))
    stale = "docs/openapi.json is out of date: run .venv/bin/python scripts/write_openapi.py and commit it"
    assert sorted(served["paths"]) == sorted(committed["paths"]), stale
    assert served == committed, stale


def test_readme_is_short_and_its_links_resolve():
    assert len(README.encode("utf-8")) <= README_LIMIT, "README.md grew: move the details into docs/"
    assert "make run" in README and "make test" in README
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README)
    local = [target for target in targets if "://" not in target]
    assert local, "the README links into the docs"
    for target in local:
        assert (ROOT / target).exists(), f"README links to {target}, which does not exist"
