"""The house's rules, read from the source with `ast`: rooms import only the rooms below them (the README's Layout),
no module imports another room's private module, and no import circle, lazy imports inside functions included.

A failure names the importing module, the imported one and the rule; fix the design, not this table.
"""
from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Each room and the rooms it may import, bottom to top. `ground` is the `tpsearch` package's own modules (errors,
# files, Ctrl-C); the command line is the top floor and nothing in the product imports it; `testing` is what tests
# and benchmarks share, outside the product.
BELOW = {
    "ground": set(),
    "trainers": {"ground"},
    "spaces": {"ground", "trainers"},
    "study": {"ground"},
    "storages": {"ground"},
    "checkpoints": {"ground", "trainers", "spaces"},
    "search": {"ground", "trainers", "spaces", "study", "storages", "checkpoints"},
    "dashboards": {"ground", "study"},
}
BELOW["planned"] = BELOW["search"] | {"search"}
BELOW["export"] = BELOW["planned"] | {"planned"}
PRODUCT = set(BELOW)
BELOW["cli"] = PRODUCT
BELOW["testing"] = PRODUCT | {"cli"}
ROOMS = {"tpsearch.cli": "cli", "tpsearch._cli": "cli", "tpsearch.__main__": "cli", "tpsearch.testing": "testing",
         **{f"tpsearch.{name}": name for name in BELOW if name not in ("ground", "cli", "testing")}}


def _modules() -> dict[str, Path]:
    """Every module of the package, by its import name, from pyproject's package list and folders."""
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = setup.get("package-dir", {})
    modules = {}
    for package in setup["packages"]:
        parent = next((p for p in sorted(folders, key=len, reverse=True) if package == p or
                       package.startswith(p + ".")), None)
        folder = ROOT / (folders[parent] + package[len(parent):].replace(".", "/") if parent else
                         package.replace(".", "/"))
        for path in folder.glob("*.py"):
            modules[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return modules


MODULES = _modules()


def _room(module: str) -> str:
    for prefix in sorted(ROOMS, key=len, reverse=True):
        if module == prefix or module.startswith(prefix + "."):
            return ROOMS[prefix]
    return "ground"


def _imports(module: str, path: Path) -> set[str]:
    """The package's modules `module` imports, anywhere in it (`from P import name` counts P.name where that is a
    module, else P)."""
    package = module if path.stem == "__init__" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for target in targets:
            while target not in MODULES and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in MODULES and target != module:
                found.add(target)
    return found


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def _private_owner(module: str) -> str | None:
    """The package whose private module `module` is (`a.b._c.d` -> `a.b`), or None for a public one."""
    parts = module.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:i])
    return None


def test_the_package_is_walked():
    assert {"tpsearch.search._driver", "tpsearch.study", "tpsearch.cli._main", "tpsearch.spaces.resnet_5m"} <= set(
        MODULES)
    assert GRAPH["tpsearch.search._driver"] and all(_room(m) in BELOW for m in MODULES)


def test_every_room_imports_only_the_rooms_below_it():
    wrong = sorted(f"{m} ({_room(m)}) imports {t} ({_room(t)})" for m, ts in GRAPH.items() for t in ts
                   if _room(t) != _room(m) and _room(t) not in BELOW[_room(m)])
    assert not wrong, "\n".join(wrong)


def test_no_module_imports_another_packages_private_module():
    wrong = sorted(f"{m} imports {t}" for m, ts in GRAPH.items() for t in ts
                   if _room(m) != "testing" and (owner := _private_owner(t)) is not None
                   and not (m == owner or m.startswith(owner + ".")))
    assert not wrong, "\n".join(wrong)


def test_no_import_circle():
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    assert not circles, circles


@pytest.mark.parametrize("broken, rule", [
    ({"tpsearch.dashboards._page": {"tpsearch.search._driver"}}, test_every_room_imports_only_the_rooms_below_it),
    ({"tpsearch.search._driver": {"tpsearch.spaces._base"}}, test_no_module_imports_another_packages_private_module),
    ({"tpsearch.study._outcome": {"tpsearch.study._frame"}, "tpsearch.study._frame": {"tpsearch.study._outcome"}},
     test_no_import_circle),
])
def test_each_rule_fails_on_what_it_forbids(broken, rule, monkeypatch):
    for module, targets in broken.items():
        monkeypatch.setitem(GRAPH, module, GRAPH[module] | targets)
    with pytest.raises(AssertionError):
        rule()
