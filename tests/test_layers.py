"""The layout's rule, read off the import graph: a module imports only from its own layer or
the layers below it, and nothing imports in a cycle. The layers are the README's ("Layout")."""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: lowest first; a name is a top-level module or package of openbai
LAYERS: list[set[str]] = [
    {"openbai", "errors", "settings", "files", "folders", "vocabulary", "retry"},
    {"spec"},
    {"store", "storage"},
    {"plan"},
    {"mounts"},
    {"runtime"},
    {"executors"},
    {"installation"},
    {"scheduling"},
    {"services"},
    {"http"},
    {"api", "web"},
    {"server"},
    {"cli"},
]
LAYER = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> Iterator[str]:
    """Every openbai module ``path`` imports, at any depth of the file (lazy imports too)."""
    this = module_name(path).split(".")
    package = this if path.name == "__init__.py" else this[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.split(".")[0] == "openbai")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            if module.split(".")[0] != "openbai":
                continue
            for alias in node.names:  # `from openbai.x import y` may name module x.y
                candidate = f"{module}.{alias.name}"
                yield candidate if _exists(candidate) else module


def _exists(module: str) -> bool:
    path = SRC / module.replace(".", "/")
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "openbai"


@functools.cache
def graph() -> dict[str, set[str]]:
    return {
        module_name(p): set(imports(p)) - {module_name(p)}
        for p in sorted((SRC / "openbai").rglob("*.py"))
    }


def test_every_top_level_module_has_a_layer() -> None:
    tops = {top(m) for m in graph()}
    assert tops - LAYER.keys() == set(), "add the new module or package to LAYERS and the README"


@pytest.mark.parametrize("module", sorted(graph()))
def test_a_module_imports_nothing_of_a_layer_above_it(module: str) -> None:
    rank = LAYER[top(module)]
    above = sorted(i for i in graph()[module] if LAYER[top(i)] > rank)
    assert above == [], f"{module} (layer {top(module)}) imports {above}"


def test_api_and_web_do_not_import_each_other() -> None:
    g = graph()
    crossing = [
        (m, i) for m, targets in g.items() for i in targets if {top(m), top(i)} == {"api", "web"}
    ]
    assert crossing == []


def test_no_import_cycle() -> None:
    g = graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for n in sorted(g.get(m, ())):
            if state.get(n) == 1:
                return path[path.index(n) :] + [n]
            if n not in state and (cycle := visit(n)) is not None:
                return cycle
        state[m] = 2
        path.pop()
        return None

    cycles = [cycle for m in sorted(g) if m not in state and (cycle := visit(m)) is not None]
    assert cycles == []
