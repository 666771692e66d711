"""The services package imports one way: no module cycles, function-level imports included.

Read with `ast`, not by importing (a function-level import is how a cycle hides). Imports
under `if TYPE_CHECKING:` are left out: they never run. Issue 14 named the cycles this
replaces: process_backend <-> process_postgres / process_temporal / readiness (held by
function-level imports and a module `__getattr__`) and docker_backend <-> docker_container.
"""

from __future__ import annotations

import ast
from pathlib import Path

import staging.services

ROOT = Path(staging.services.__file__).parent
PACKAGE = "staging.services"


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    parts = parts[:-1] if parts[-1] == "__init__" else parts
    return ".".join((PACKAGE, *parts))


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return getattr(test, "id", None) == "TYPE_CHECKING" or getattr(test, "attr", "") == (
        "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, modules: frozenset[str] = frozenset()) -> set[str]:
    """What `tree` imports at run time. `from pkg import mod` of a submodule in `modules`
    counts as `pkg.mod` only: every submodule import runs its package first anyway."""
    found: set[str] = set()
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _type_checking_only(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = {f"{node.module}.{alias.name}" for alias in node.names}
            found |= names
            if not names <= modules:
                found.add(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module":
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.add(first.value)
        stack.extend(ast.iter_child_nodes(node))
    return found


def import_graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in ROOT.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        targets = _imports(ast.parse(path.read_text()), frozenset(modules))
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_checker_sees_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    tree = ast.parse(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import x\n"
        "def f():\n    from y import z\n    importlib.import_module('w')\n"
    )
    assert _imports(tree) == {"typing", "typing.TYPE_CHECKING", "y", "y.z", "w"}


def test_no_import_cycles_in_the_services_package() -> None:
    graph = import_graph()
    assert "staging.services.process_postgres" in graph  # the walk found the package
    assert "staging.services.attach.backend" in graph
    assert cycles(graph) == []


def test_services_never_import_their_backend() -> None:
    graph = import_graph()
    for service in ("process_postgres", "process_temporal", "process_service", "readiness"):
        assert f"{PACKAGE}.process_backend" not in graph[f"{PACKAGE}.{service}"], service
    assert f"{PACKAGE}.docker_backend" not in graph[f"{PACKAGE}.docker_container"]
    source = (ROOT / "process_backend.py").read_text()
    assert "__getattr__" not in source
