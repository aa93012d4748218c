"""The package's floors, read from its source: a module never imports one from a floor above it, and
no two modules import each other, directly or round a circle (imports inside functions and under
TYPE_CHECKING included: a lazy import still ties two modules together)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import reverie

ROOT = Path(reverie.__file__).parent
# Lowest first; the top-level modules (checkpoint.py, errors.py, ...) are the ground floor, 0.
FLOORS = {
    "worlds": 1,
    "data": 2,
    "models": 3,
    "train": 4,
    "generate": 4,
    "engine": 5,
    "eval": 6,
    "serve": 7,
    "cli": 8,
}


def _modules() -> dict[str, Path]:
    mods = {}
    for p in ROOT.rglob("*.py"):
        name = ".".join(("reverie", *p.relative_to(ROOT).with_suffix("").parts))
        mods[name.removesuffix(".__init__")] = p
    return mods


def _imports(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the reverie modules it imports (a package's name where no submodule is named)."""
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for t in targets:
                if t in mods and t != name:
                    edges[name].add(t)
                    break
    return edges


def _floor(module: str) -> int:
    if module == "reverie.__main__":  # `python -m reverie`: the entry point above everything
        return max(FLOORS.values()) + 1
    parts = module.split(".")
    return FLOORS.get(parts[1], 0) if len(parts) > 1 else 0


def _circles(edges: dict[str, set[str]]) -> list[list[str]]:
    circles, state = [], {}  # state: 1 on the current path, 2 done

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in sorted(edges.get(m, ())):
            if state.get(n) == 1:
                circles.append([*path[path.index(n) :], n])
            elif n not in state:
                visit(n, [*path, n])
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m, [m])
    return circles


def test_no_module_imports_from_a_floor_above() -> None:
    edges = _imports(_modules())
    up = sorted((a, b) for a, bs in edges.items() for b in bs if a != "reverie" and _floor(b) > _floor(a))
    assert up == []
    assert edges["reverie.serve.app"] and edges["reverie.cli.play"]  # the walk does see imports


def test_no_import_circles() -> None:
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    edges = _imports(_modules())
    # the package's __init__ re-exports from below; nothing imports the package itself but by a name
    assert _circles({a: bs - {"reverie"} for a, bs in edges.items() if a != "reverie"}) == []
