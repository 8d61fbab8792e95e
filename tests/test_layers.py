"""Architecture rules (docs/architecture.md), each as a small test that fails when one bad import returns.

The import graph is read from the code itself (every ``import app...`` and ``from app... import``, function-
level imports included), so a rule cannot be dodged by importing lazily.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app"

# what each layer may import (besides itself); dependencies point one way only:
# api/cli/main -> services -> jobs -> methods -> modeling; store and figures beside
ALLOWED = {
    "errors": set(),
    "data": set(),
    "settings": {"errors"},
    "ids": set(),
    "modeling": {"errors", "settings", "ids", "data"},
    "methods": {"errors", "modeling", "ids", "data"},
    "figures": {"errors"},
    "datasets": {"errors", "methods"},
    "store": {"errors", "settings", "ids", "modeling", "methods"},
    "jobs": {"errors", "settings", "data", "modeling", "methods", "store", "datasets"},
    "services": {"errors", "settings", "data", "modeling", "methods", "store", "figures", "jobs", "datasets"},
    "api": {
        "app",
        "errors",
        "settings",
        "data",
        "methods",
        "store",
        "figures",
        "jobs",
        "services",
        "datasets",
    },
    "cli": {
        "app",
        "data",
        "errors",
        "settings",
        "modeling",
        "methods",
        "store",
        "figures",
        "jobs",
        "services",
        "main",
        "datasets",
    },
    "main": {"app", "errors", "settings", "data", "modeling", "store", "jobs", "services", "api", "datasets"},
    "app": set(),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "app"


def import_graph() -> dict[str, set[str]]:
    """module -> the app modules it imports."""
    graph: dict[str, set[str]] = defaultdict(set)
    for path in APP.rglob("*.py"):
        module = _module_name(path)
        graph[module]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "app":
                graph[module].add(node.module)
            elif isinstance(node, ast.Import):
                graph[module].update(a.name for a in node.names if a.name.split(".")[0] == "app")
    return graph


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Every import from one layer into a layer it may not depend on."""
    bad = []
    for module, targets in graph.items():
        source = _layer(module)
        for target in targets:
            layer = _layer(target)
            if layer != source and layer not in ALLOWED[source]:
                bad.append(f"{module} -> {target}")
    return sorted(bad)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in list(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_every_layer_is_known():
    assert {_layer(module) for module in import_graph()} <= set(ALLOWED)


def test_no_upward_imports():
    assert upward_imports(import_graph()) == []


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_the_rules_catch_a_bad_import():
    """The checks themselves fail on an upward import and on a cycle."""
    graph = {"app.methods.x": {"app.store.y"}, "app.store.y": {"app.methods.x"}}
    assert upward_imports(graph) == ["app.methods.x -> app.store.y"]
    assert cycles(graph) == [["app.methods.x", "app.store.y"]]
    assert upward_imports({"app.jobs.a": {"app.services.runner"}}) == ["app.jobs.a -> app.services.runner"]


def test_api_reaches_methods_only_through_the_registry():
    """Routes list methods from the registry; everything else they need comes from a service."""
    graph = import_graph()
    deep = [
        f"{module} -> {target}"
        for module, targets in graph.items()
        if _layer(module) == "api"
        for target in targets
        if _layer(target) in ("methods", "modeling") and target != "app.methods"
    ]
    assert deep == []


def _sources(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (APP / folder).rglob("*.py"))


def test_the_model_lock_never_leaves_the_services():
    """Outside app/services nobody reads a runner's model, takes its lock or holds a raw lock for it."""
    pattern = re.compile(r"(?<!self)\.(lock|_lock|loaded|_loaded)\b|model_lock")
    outside = [path for path in APP.rglob("*.py") if "services" not in path.relative_to(APP).parts]
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in outside
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if pattern.search(line.split("#")[0]) and "self._lock" not in line and "_lock = " not in line
    ]
    assert offenders == []


def test_contracts_are_read_directly():
    """Method and job attributes are declared on their protocols: nobody reads them with getattr."""
    pattern = re.compile(r"getattr\((method|kind|job)\b")
    offenders = [path for path in APP.rglob("*.py") if pattern.search(path.read_text(encoding="utf-8"))]
    assert offenders == []


def test_methods_do_not_import_fastapi():
    for path in _sources("methods"):
        assert not re.search(r"^\s*(from|import) (fastapi|starlette)", path.read_text(), re.M), path


def test_figures_import_no_torch():
    code = "import sys, app.figures; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


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


def test_no_loose_modules_in_app():
    """app/ holds packages by layer, plus the app factory and the three modules every layer shares."""
    loose = sorted(path.name for path in APP.glob("*.py"))
    assert loose == ["__init__.py", "errors.py", "ids.py", "main.py", "settings.py"]


def test_importing_and_building_the_app_loads_no_model():
    """The model loads in the lifespan, not at import or app creation: a bogus model path is harmless here."""
    code = "import app.cli; from app.main import create_app; create_app()"
    env = {"BERTSCOPE_MODEL": "/no/such/model", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
