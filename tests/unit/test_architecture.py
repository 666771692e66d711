"""The layering ARCHITECTURE.md asks for, checked on the source: the terminal belongs to the
CLI, so no module below `staging/commands/` imports rich or a command.

Read with `ast`, not by importing: function-level imports count too (they are how a cycle
hides), and a module that is only imported on some path is checked all the same.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import staging

ROOT = Path(staging.__file__).parent
# The CLI layer: the commands, their dispatcher and the `python -m staging` entry.
CLI_LAYER = ("commands/", "cli.py", "__main__.py")
FORBIDDEN = ("rich", "staging.commands", "staging.cli")


def _module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(source: str, module: str, *, package: bool = False) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in `source`, at any depth, including
    `importlib.import_module("...")` with a literal name."""
    here = module.split(".") if package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here[: len(here) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield node.lineno, base
            for alias in node.names:  # `from staging import commands`
                yield node.lineno, f"{base}.{alias.name}"
        elif isinstance(node, ast.Call) and _is_dynamic_import(node):
            yield node.lineno, node.args[0].value  # type: ignore[attr-defined]


def _is_dynamic_import(node: ast.Call) -> bool:
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    first = node.args[0] if node.args else None
    return (
        name in ("import_module", "__import__")
        and isinstance(first, ast.Constant)
        and isinstance(first.value, str)
    )


def _forbidden(name: str) -> bool:
    return any(name == f or name.startswith(f"{f}.") for f in FORBIDDEN)


def offenders(root: Path = ROOT) -> list[str]:
    """ "staging/FILE:LINE imports NAME", one per offending import statement."""
    found: dict[tuple[str, int], str] = {}
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        if relative.startswith(CLI_LAYER):
            continue
        source = path.read_text(encoding="utf-8")
        module = _module_name(path, root)
        for line, name in imported_names(source, module, package=path.name == "__init__.py"):
            if _forbidden(name):
                shortest = found.setdefault((relative, line), name)
                found[(relative, line)] = min(shortest, name, key=len)
    return [f"staging/{rel}:{line} imports {name}" for (rel, line), name in sorted(found.items())]


def test_no_module_below_the_commands_imports_rich_or_a_command() -> None:
    found = offenders()
    assert not found, (
        "the core emits events to a sink (staging.events); the terminal and the commands "
        "belong to the CLI layer (staging/commands/, staging/cli.py):\n" + "\n".join(found)
    )


def test_the_walk_covers_the_core() -> None:
    walked = [
        p for p in ROOT.rglob("*.py") if not p.relative_to(ROOT).as_posix().startswith(CLI_LAYER)
    ]
    names = {_module_name(p) for p in walked}
    assert {"staging.runner", "staging.keep", "staging.phases.teardown", "staging.events"} <= names


@pytest.mark.parametrize(
    ("source", "module", "expected"),
    [
        ("import rich.console", "staging.x", "rich.console"),
        ("from rich.markup import escape", "staging.x", "rich.markup"),
        ("def f():\n    from staging.commands.up import run", "staging.x", "staging.commands.up"),
        ("from staging import commands", "staging.x", "staging.commands"),
        ("from ..commands import up", "staging.phases.x", "staging.commands"),
        ("from . import cli", "staging.x", "staging.cli"),
        (
            "import importlib\nimportlib.import_module('staging.commands.run')",
            "staging.x",
            "staging.commands.run",
        ),
    ],
)
def test_the_check_sees_every_spelling_of_an_import(
    source: str, module: str, expected: str
) -> None:
    names = [name for _, name in imported_names(source, module)]
    assert expected in names
    assert any(_forbidden(name) for name in names)


def test_offenders_are_listed_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "commands").mkdir()
    (tmp_path / "commands" / "up.py").write_text("import rich\n")  # the CLI layer may
    (tmp_path / "keep.py").write_text('"""doc"""\n\nfrom staging.commands.up import x\n')
    (tmp_path / "fine.py").write_text("import richer\nfrom staging.events import NullSink\n")

    assert offenders(tmp_path) == ["staging/keep.py:3 imports staging.commands.up"]
