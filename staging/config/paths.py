"""Every path named in `[tool.staging]` stays inside the project.

The project is the git work tree holding the pyproject.toml (the nearest parent with a
`.git`, a directory or a worktree's file), or the pyproject's own directory when it is in
no repository. `app_dir = "../../.."` once made a run copy and hash 36,607 files of the
directories above the project: whatever staging copies, hashes, reads or writes because
the config named it must be inside that boundary, checked on disk (symlinks followed) at
config time, so a wrong value is `config.invalid` before anything starts.

`confine` is the one check; `confine_glob` applies it to the fixed part of a glob. Keys
that name a program to run (`python`) are not confined: an interpreter outside the
project (a system Python, a venv elsewhere) is legitimate and nothing copies it.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import NoReturn


@dataclass(frozen=True)
class Boundary:
    """The directory paths must stay in, and how to say it in an error."""

    root: Path  # resolved
    described: str  # "the git work tree /x" | "the directory of /x/pyproject.toml"

    @classmethod
    def of_project(cls, pyproject: Path) -> Boundary:
        """The git work tree holding `pyproject`, else the pyproject's directory."""
        start = pyproject.resolve().parent
        for directory in (start, *start.parents):
            if (directory / ".git").exists():
                return cls(directory, f"the git work tree {directory}")
        return cls(start, f"the directory of {pyproject.resolve()} (it is in no git repository)")


def is_inside(path: Path, root: Path) -> bool:
    """`path` (resolved, symlinks followed) is `root` or below it; `root` must be resolved."""
    return path.resolve().is_relative_to(root)


def confine(
    value: str,
    *,
    key: str,
    base: Path,
    boundary: Boundary,
    pyproject: Path,
    origin: str = "file",
    follow_symlinks: bool = True,
) -> Path:
    """`base / value`, resolved, or `config.invalid` when it is outside `boundary`.

    `key` is the dotted key for the message ("tool.staging.app_dir"); `origin` where the
    value came from ("file", "env:STAGING_APP_DIR", "cli"). The path need not exist.
    `follow_symlinks=False` for a path staging writes into its own copy of the app, where
    the developer's symlinks (a `.env` linked to a private file) do not exist.
    """
    joined = base / os.path.expanduser(value)
    resolved = joined.resolve() if follow_symlinks else Path(os.path.normpath(joined))
    if not resolved.is_relative_to(boundary.root):
        _outside(
            value,
            resolved,
            key=key,
            base=base,
            boundary=boundary,
            pyproject=pyproject,
            origin=origin,
        )
    return resolved


def confine_glob(
    pattern: str,
    *,
    key: str,
    base: Path,
    boundary: Boundary,
    pyproject: Path,
    origin: str = "file",
) -> str:
    """`pattern` when its fixed part (up to the first wildcard) is inside `boundary` and no
    `..` follows a wildcard (`h/**/..` climbs one level more when `**` matches nothing
    than the text suggests); else `config.invalid`. Returns the pattern unchanged."""
    parts = PurePath(os.path.expanduser(pattern)).parts
    magic = next((i for i, part in enumerate(parts) if glob.has_magic(part)), len(parts))
    resolved = (base / Path(*parts[:magic])).resolve() if magic else base.resolve()
    if ".." in parts[magic:] or not resolved.is_relative_to(boundary.root):
        _outside(
            pattern,
            resolved,
            key=key,
            base=base,
            boundary=boundary,
            pyproject=pyproject,
            origin=origin,
        )
    return pattern


def _outside(
    value: str,
    resolved: Path,
    *,
    key: str,
    base: Path,
    boundary: Boundary,
    pyproject: Path,
    origin: str,
) -> NoReturn:
    # Imported here: pydantic comes with it, and the gate needs `Boundary` without it.
    from staging.config.problems import Problem, raise_problems

    raise_problems(
        [
            Problem(
                key=key,
                origin=origin,
                what="the path is outside the project",
                expected=f"a path inside {boundary.described}, relative to {base}",
                observed=f"{value!r} -> {resolved}",
                hint=f"point {key.rpartition('.')[2]} at a path under {boundary.root}: staging "
                "copies, hashes and reads only the project, never the directories around it",
            )
        ],
        pyproject,
    )
