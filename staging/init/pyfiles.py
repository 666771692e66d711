"""The app's Python files, parsed but never imported or run, and their module names.

Import roots come from the pyproject (setuptools `where` / `package-dir`, hatch, poetry,
pdm, flit) or a plain `src/` dir, the way the harness works them out at run time, so the
`module:Class` names written by `staging init` resolve there.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Never the app's code: environments, build output, caches, VCS, staging's own dir.
SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".venv",
        "venv",
        "env",
        ".nox",
        ".tox",
        ".staging",
        "__pycache__",
        "node_modules",
        "build",
        "dist",
        "site-packages",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
    }
)


@dataclass(frozen=True)
class PyFile:
    path: Path  # absolute
    rel: str  # relative to the project dir, POSIX
    module: str | None  # dotted name under an import root; None for a script outside them
    tree: ast.Module

    @property
    def is_test(self) -> bool:
        name = self.path.name
        parts = self.rel.split("/")
        return (
            name.startswith("test_")
            or name.endswith("_test.py")
            or name == "conftest.py"
            or any(p in ("tests", "test") for p in parts[:-1])
        )

    @property
    def in_package(self) -> bool:
        return self.module is not None and "." in self.module


def import_roots(project_dir: Path, pyproject: dict[str, Any]) -> tuple[list[str], str]:
    """(roots relative to the project dir, where they came from)."""
    tool = pyproject.get("tool", {}) if isinstance(pyproject.get("tool"), dict) else {}
    found = _declared_roots(tool)
    if found is not None:
        return found
    if (project_dir / "src").is_dir() and not (project_dir / "src" / "__init__.py").exists():
        return ["src"], "a plain src/ dir"
    return ["."], "the project dir"


def _declared_roots(tool: dict[str, Any]) -> tuple[list[str], str] | None:
    setuptools = tool.get("setuptools", {})
    find = setuptools.get("packages", {})
    if isinstance(find, dict) and isinstance(find.get("find"), dict):
        where = find["find"].get("where")
        if isinstance(where, list) and where:
            return [str(w) for w in where], "[tool.setuptools.packages.find] where"
    package_dir = setuptools.get("package-dir")
    if isinstance(package_dir, dict) and isinstance(package_dir.get(""), str):
        return [package_dir[""]], "[tool.setuptools] package-dir"
    wheel = tool.get("hatch", {}).get("build", {}).get("targets", {}).get("wheel", {})
    packages = wheel.get("packages") if isinstance(wheel, dict) else None
    if isinstance(packages, list) and packages:
        roots = sorted({str(Path(p).parent.as_posix()) for p in packages})
        return roots, "[tool.hatch.build.targets.wheel] packages"
    poetry = tool.get("poetry", {}).get("packages")
    if isinstance(poetry, list) and poetry:
        roots = sorted({str(p.get("from", ".")) for p in poetry if isinstance(p, dict)})
        return roots or ["."], "[tool.poetry] packages"
    pdm = tool.get("pdm", {}).get("build", {}).get("package-dir")
    if isinstance(pdm, str):
        return [pdm], "[tool.pdm.build] package-dir"
    return None


def module_name(rel: Path, roots: list[str]) -> str | None:
    """The dotted module for a file relative to the project dir, under the deepest root."""
    for root in sorted(roots, key=lambda r: -len(Path(r).parts)):
        base = Path(root)
        try:
            inner = rel.relative_to(base) if root not in (".", "") else rel
        except ValueError:
            continue
        parts = list(inner.with_suffix("").parts)
        if parts and parts[-1] == "__init__":
            parts.pop()
        if parts and all(p.isidentifier() for p in parts):
            return ".".join(parts)
    return None


def walk(project_dir: Path, roots: list[str]) -> Iterator[PyFile]:
    for dirpath, dirnames, filenames in os.walk(project_dir):
        dirnames[:] = sorted(
            d for d in dirnames if d not in SKIP_DIRS and not d.endswith(".egg-info")
        )
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            path = Path(dirpath) / name
            rel = path.relative_to(project_dir)
            try:
                tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            except (SyntaxError, UnicodeDecodeError, OSError):
                continue  # not ours to judge; the run will say
            module = module_name(rel, roots) if _packaged(project_dir, rel, roots) else None
            yield PyFile(path=path, rel=rel.as_posix(), module=module, tree=tree)


def _packaged(project_dir: Path, rel: Path, roots: list[str]) -> bool:
    """A file directly in a root, or one whose every dir below the root has `__init__.py`
    (namespace packages are rare in apps; a `scripts/` dir is not a package)."""
    for root in roots:
        base = Path(root)
        try:
            inner = rel.relative_to(base) if root not in (".", "") else rel
        except ValueError:
            continue
        dirs = [base.joinpath(*inner.parts[: i + 1]) for i in range(len(inner.parts) - 1)]
        if all((project_dir / d / "__init__.py").exists() for d in dirs):
            return True
    return False


def has_main_block(tree: ast.Module) -> ast.If | None:
    for node in tree.body:
        if (
            isinstance(node, ast.If)
            and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name)
            and node.test.left.id == "__name__"
        ):
            return node
    return None
