"""No import cycle anywhere in the package: the graph of every import (module level and inside functions, but
not ``if TYPE_CHECKING:`` blocks) between laser_gs modules, package ``__init__`` files included, is acyclic.

Importing ``a.b.c`` runs the ``__init__`` of ``a`` and ``a.b`` first, so those are edges too, except for the
importing module's own packages (already running when it is imported). Importing a name from one's own
package's ``__init__`` is an edge to it, and a cycle when that ``__init__`` imports the module."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "laser_gs"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str, modules: set[str]) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):  # TYPE_CHECKING blocks never run
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for n in ast.walk(node)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        for t in targets:
            while t and t not in modules:
                t = t.rpartition(".")[0]
            if t:
                found.add(t)
                parent = t.rpartition(".")[0]
                while parent:  # importing a.b.c runs a/__init__ and a/b/__init__ first, unless they are
                    if not (name + ".").startswith(parent + "."):  # this module's own (already running) packages
                        found.add(parent)
                    parent = parent.rpartition(".")[0]
    found.discard(name)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_import_graph_has_no_cycle():
    files = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph = {name: _imports(path, name, set(files)) for name, path in files.items()}
    assert len(graph) > 40
    assert _cycles(graph) == []
