"""Which files of the app would be deployed: one rule for the copy and for the tree hash.

In a git repository: tracked + untracked-not-ignored files under the app dir
(`git ls-files --cached --others --exclude-standard`), minus tracked files deleted in
the work tree. Outside git: every file under the app dir except tool and cache
directories. In both cases a developer's env files (`.env`, `.env.local`, `.envrc`, ...,
but not templates such as `.env.example`) and `.staging/` are never part of it: the
staging settings are delivered separately, and a developer's own secrets would mask a
broken settings loader.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from staging.workspace.git import GitRepo, find_repo, run_git

ENV_TEMPLATE_SUFFIXES = frozenset({"example", "sample", "template", "dist", "defaults"})
NON_GIT_SKIP_DIRS = frozenset(
    {".git", ".staging", "__pycache__", ".venv", ".nox", ".tox", "node_modules", ".mypy_cache"}
)


def is_env_file(name: str) -> bool:
    """True for a developer's env file: `.env`, `.envrc`, `.env.<anything but a template>`."""
    if name in (".env", ".envrc"):
        return True
    if name.startswith(".env."):
        return name[len(".env.") :].lower() not in ENV_TEMPLATE_SUFFIXES
    return False


def is_excluded(rel_path: str) -> bool:
    """The never-deployed rule for a posix path relative to the app dir."""
    parts = rel_path.split("/")
    return ".staging" in parts or any(is_env_file(part) for part in parts)


@dataclass
class Listing:
    files: list[str]  # sorted posix paths relative to the app dir
    repo: GitRepo | None
    notes: list[str] = field(default_factory=list)


def deployable_files(app_dir: Path) -> list[str]:
    """The files that would be deployed, sorted posix paths relative to `app_dir`."""
    return list_deployable(app_dir).files


def list_deployable(app_dir: Path) -> Listing:
    app_dir = Path(app_dir)
    repo = find_repo(app_dir)
    if repo is None:
        return _list_plain(app_dir)
    return _list_git(app_dir, repo)


def _list_git(app_dir: Path, repo: GitRepo) -> Listing:
    out = run_git(["ls-files", "-z", "--cached", "--others", "--exclude-standard"], app_dir)
    listing = Listing(files=[], repo=repo)
    skipped_env: list[str] = []
    for rel in sorted({os.fsdecode(p) for p in out.split(b"\0") if p}):
        if rel.endswith("/"):
            listing.notes.append(f"skipped {rel}: a nested git repository, not tracked here")
            continue
        if is_excluded(rel):
            skipped_env.append(rel)
            continue
        path = app_dir / rel
        if not os.path.lexists(path):
            continue  # tracked but deleted in the work tree: not deployed
        if path.is_dir() and not path.is_symlink():
            listing.notes.append(f"skipped {rel}: a git submodule (its files are not copied)")
            continue
        listing.files.append(rel)
    if skipped_env:
        listing.notes.append(_env_note(skipped_env))
    return listing


def _list_plain(app_dir: Path) -> Listing:
    listing = Listing(files=[], repo=None)
    skipped_env: list[str] = []
    for dirpath, dirnames, filenames in os.walk(app_dir):
        rel_dir = Path(dirpath).relative_to(app_dir).as_posix()
        prefix = "" if rel_dir == "." else f"{rel_dir}/"
        keep = []
        for name in sorted(dirnames):
            rel = f"{prefix}{name}"
            if name in NON_GIT_SKIP_DIRS:
                continue
            if is_excluded(rel):
                skipped_env.append(rel)
            elif os.path.islink(os.path.join(dirpath, name)):
                listing.files.append(rel)  # a link to a directory is an entry, not walked
            else:
                keep.append(name)
        dirnames[:] = keep
        for name in filenames:
            rel = f"{prefix}{name}"
            mode = os.lstat(os.path.join(dirpath, name)).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
                continue  # sockets, fifos: nothing a deploy would ship
            if is_excluded(rel):
                skipped_env.append(rel)
            else:
                listing.files.append(rel)
    listing.files.sort()
    if skipped_env:
        listing.notes.append(_env_note(sorted(skipped_env)))
    return listing


def _env_note(paths: list[str]) -> str:
    return f"not copied (a developer's env files and .staging/ never are): {', '.join(paths)}"
