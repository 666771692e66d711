"""The app's import roots: the directories its own packages are imported from.

A deployed app imports its packages from wherever its build config puts them (`src/`
for most packaged apps, the project root for flat ones). Staging puts the workspace
copy's roots first on every app process's path, so what runs is the copy, never an
editable install of the developer's checkout. The roots come from, first match wins:

1. `python_path = [...]` in `[tool.staging]` (relative to app_dir);
2. the app's own pyproject.toml (in app_dir): setuptools `packages.find.where` /
   `package-dir`, hatch `tool.hatch.build.targets.wheel.packages` (or `.sources`),
   pdm `tool.pdm.build.package-dir`, poetry `packages = [{include, from}]`, flit
   `tool.flit.module.name`, uv's build backend `module-root`;
3. a `src/` dir holding a package or module;
4. the app dir itself (".").

`app_names` lists the top-level packages and modules found in those roots of the
developer's tree (ignored files included: those are the ones a shadowing import finds),
which is what the module-origin check watches.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

_SKIP_DIRS = {"__pycache__", "node_modules", "site-packages", ".staging", "venv", ".venv"}


@dataclass(frozen=True)
class ImportRoots:
    roots: tuple[str, ...]  # POSIX paths relative to the app dir, "." for the dir itself
    source: str  # where they came from, for the run's header ("python_path", "hatch", ...)
    packages: tuple[str, ...] = ()  # top-level names the build config declares

    def under(self, base: Path) -> list[Path]:
        return [base if r == "." else base / r for r in self.roots]


def import_roots(app_dir: Path, python_path: list[str] | None = None) -> ImportRoots:
    """The app's roots: the configured ones, else what its pyproject or layout says."""
    if python_path:
        return ImportRoots(tuple(python_path), "python_path")
    found = _from_pyproject(_read_pyproject(app_dir / "pyproject.toml"), app_dir)
    if found is not None:
        return found
    if _holds_code(app_dir / "src"):
        return ImportRoots(("src",), "src layout")
    return ImportRoots((".",), "app dir")


def app_names(app_dir: Path, roots: ImportRoots, dirs: Iterable[str] = ()) -> set[str]:
    """Top-level packages and modules of the app, as found in its roots (on disk).

    `dirs`: more directories (relative to the app dir) a command has first on its path:
    its `cwd`, a script's own directory.
    """
    names = {p.split(".")[0] for p in roots.packages}
    for root in [*roots.under(app_dir), *(app_dir / d for d in dirs)]:
        names.update(_top_level(root))
    return {n for n in names if n.isidentifier()}


def _top_level(root: Path) -> Iterable[str]:
    try:
        entries = list(root.iterdir())
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith(".") or entry.name in _SKIP_DIRS:
            continue
        if entry.suffix == ".py" and entry.is_file():
            yield entry.stem
        # Only regular packages: a directory such as `alembic/` or `migrations/` without
        # an __init__.py is data, and its name is often a library's.
        elif entry.is_dir() and (entry / "__init__.py").is_file():
            yield entry.name


def _holds_code(directory: Path) -> bool:
    return any(True for _ in _top_level(directory))


def _read_pyproject(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}
    return data


def _table(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _from_pyproject(data: dict[str, Any], app_dir: Path) -> ImportRoots | None:
    for reader in (_setuptools, _hatch, _pdm, _poetry, _flit, _uv):
        found = reader(data, app_dir)
        if found is not None:
            return found
    return None


def _clean(paths: Iterable[Any]) -> tuple[str, ...]:
    out: list[str] = []
    for path in paths:
        if isinstance(path, str):
            text = str(PurePosixPath(path.strip("/") or "."))
            if not text.startswith("..") and text not in out:
                out.append(text)
    return tuple(out)


def _setuptools(data: dict[str, Any], app_dir: Path) -> ImportRoots | None:
    tool = _table(data, "tool", "setuptools")
    if not isinstance(tool, dict):
        return None
    where = _table(tool, "packages", "find", "where")
    if isinstance(where, list) and _clean(where):
        return ImportRoots(_clean(where), "setuptools packages.find.where")
    package_dir = tool.get("package-dir")
    if isinstance(package_dir, dict):
        roots = _clean([package_dir.get("")]) if "" in package_dir else ()
        # {"pkg": "lib/pkg"} imports pkg from lib/: a root only when the names agree.
        for name, path in package_dir.items():
            if name and isinstance(path, str) and PurePosixPath(path).name == name:
                roots += _clean([str(PurePosixPath(path).parent)])
        if roots:
            packages = tuple(n for n in package_dir if n)
            return ImportRoots(tuple(dict.fromkeys(roots)), "setuptools package-dir", packages)
    return None


def _hatch(data: dict[str, Any], app_dir: Path) -> ImportRoots | None:
    for keys in (("targets", "wheel"), ()):
        build = _table(data, "tool", "hatch", "build", *keys)
        packages = _table(build, "packages")
        if isinstance(packages, list) and packages:
            paths = [PurePosixPath(p) for p in packages if isinstance(p, str)]
            roots = _clean(str(p.parent) for p in paths)
            return ImportRoots(roots, "hatch build packages", tuple(p.name for p in paths))
        sources = _table(build, "sources")
        if isinstance(sources, list | dict) and sources:
            prefixes = list(sources) if isinstance(sources, list) else list(sources.keys())
            return ImportRoots(_clean(prefixes), "hatch build sources")
    return None


def _pdm(data: dict[str, Any], app_dir: Path) -> ImportRoots | None:
    package_dir = _table(data, "tool", "pdm", "build", "package-dir")
    if isinstance(package_dir, str):
        return ImportRoots(_clean([package_dir]), "pdm build package-dir")
    return None


def _poetry(data: dict[str, Any], app_dir: Path) -> ImportRoots | None:
    packages = _table(data, "tool", "poetry", "packages")
    if not isinstance(packages, list) or not packages:
        return None
    entries = [p for p in packages if isinstance(p, dict) and isinstance(p.get("include"), str)]
    roots = _clean(str(p.get("from") or ".") for p in entries)
    names = tuple(str(p["include"]).split("/")[0].removesuffix(".py") for p in entries)
    return ImportRoots(roots, "poetry packages", names) if roots else None


def _flit(data: dict[str, Any], app_dir: Path) -> ImportRoots | None:
    name = _table(data, "tool", "flit", "module", "name")
    if not isinstance(name, str) or not name:
        return None
    top = name.split(".")[0]
    # flit looks for the module in the project dir, then in src/.
    here = (app_dir / top).is_dir() or (app_dir / f"{top}.py").is_file()
    return ImportRoots(("." if here else "src",), "flit module", (top,))


def _uv(data: dict[str, Any], app_dir: Path) -> ImportRoots | None:
    backend = _table(data, "build-system", "build-backend")
    settings = _table(data, "tool", "uv", "build-backend")
    if backend != "uv_build" and not isinstance(settings, dict):
        return None
    root = _table(settings, "module-root") if isinstance(settings, dict) else None
    return ImportRoots(_clean([root if isinstance(root, str) else "src"]), "uv build-backend")


def project_name(app_dir: Path) -> str | None:
    """`[project] name` (or poetry's) of the app's pyproject: the distribution to uninstall."""
    data = _read_pyproject(app_dir / "pyproject.toml")
    for keys in (("project", "name"), ("tool", "poetry", "name")):
        name = _table(data, *keys)
        if isinstance(name, str) and name:
            return name
    return None
