"""Which files of the app would be deployed: one rule for the copy and for the tree hash.

In a git repository: tracked + untracked-not-ignored files under the app dir
(`git ls-files --cached --others --exclude-standard`), minus tracked files deleted in
the work tree. Outside git: every file under the app dir except tool and cache
directories.

Left out, always: `.staging/` and the *delivered settings path* (`[tool.staging.settings]
path`, `.env` by default; a file, or a secrets dir and everything in it). Staging writes
its own settings there, and a developer's copy of that file is exactly the channel of the
incident: it would mask a broken settings loader. A tracked file that is left out this
way is reported (`excluded_tracked`), because production does ship it.

Every other tracked file is deployed and hashed, dotfiles included: a tracked
`.env.production` changes what production runs. Untracked env files (`.env.local`,
`.envrc`, `.env.<anything but a template>`) are a developer's own and never leave the
machine, so they are left out as well (a CI checkout never has them).
"""

from __future__ import annotations

import os
import posixpath
import stat
from dataclasses import dataclass, field
from pathlib import Path

from staging.workspace.git import GitRepo, find_repo, run_git

STATE_DIR = ".staging"
DEFAULT_SETTINGS_PATH = ".env"
ENV_TEMPLATE_SUFFIXES = frozenset({"example", "sample", "template", "dist", "defaults"})
NON_GIT_SKIP_DIRS = frozenset(
    {".git", STATE_DIR, "__pycache__", ".venv", ".nox", ".tox", "node_modules", ".mypy_cache"}
)


def is_env_file(name: str) -> bool:
    """True for a developer's env file: `.env`, `.envrc`, `.env.<anything but a template>`."""
    if name in (".env", ".envrc"):
        return True
    if name.startswith(".env."):
        return name[len(".env.") :].lower() not in ENV_TEMPLATE_SUFFIXES
    return False


def settings_rel(settings_path: str | None) -> str | None:
    """The delivered settings path as a normalised posix path inside the app, or None.

    None when unset or pointing outside the app (`/etc/app.env`, `../shared.env`): staging
    then writes nothing inside the app's tree, so there is nothing to leave out.
    """
    if not settings_path:
        return None
    rel = posixpath.normpath(settings_path.replace(os.sep, "/"))
    if rel in (".", "") or rel.startswith("/") or rel == ".." or rel.startswith("../"):
        return None
    return rel


def is_excluded(
    rel_path: str, settings_path: str | None = DEFAULT_SETTINGS_PATH, *, tracked: bool = True
) -> bool:
    """The never-deployed rule for a posix path relative to the app dir."""
    parts = rel_path.split("/")
    if STATE_DIR in parts:
        return True
    settings = settings_rel(settings_path)
    if settings is not None and (rel_path == settings or rel_path.startswith(f"{settings}/")):
        return True
    return not tracked and any(is_env_file(part) for part in parts)


@dataclass
class Listing:
    files: list[str]  # sorted posix paths relative to the app dir
    repo: GitRepo | None
    notes: list[str] = field(default_factory=list)
    excluded_tracked: list[str] = field(default_factory=list)  # tracked, yet left out
    settings_path: str | None = DEFAULT_SETTINGS_PATH


def deployable_files(app_dir: Path, settings_path: str | None = DEFAULT_SETTINGS_PATH) -> list[str]:
    """The files that would be deployed, sorted posix paths relative to `app_dir`."""
    return list_deployable(app_dir, settings_path).files


def list_deployable(app_dir: Path, settings_path: str | None = DEFAULT_SETTINGS_PATH) -> Listing:
    app_dir = Path(app_dir)
    repo = find_repo(app_dir)
    if repo is None:
        return _list_plain(app_dir, settings_path)
    return _list_git(app_dir, repo, settings_path)


def _git_paths(app_dir: Path, *args: str) -> set[str]:
    out = run_git(["ls-files", "-z", *args], app_dir)
    return {os.fsdecode(p) for p in out.split(b"\0") if p}


def _list_git(app_dir: Path, repo: GitRepo, settings_path: str | None) -> Listing:
    tracked = _git_paths(app_dir, "--cached")
    untracked = _git_paths(app_dir, "--others", "--exclude-standard")
    listing = Listing(files=[], repo=repo, settings_path=settings_path)
    skipped_env: list[str] = []
    for rel in sorted(tracked | untracked):
        if rel.endswith("/"):
            listing.notes.append(f"skipped {rel}: a nested git repository, not tracked here")
            continue
        if is_excluded(rel, settings_path, tracked=rel in tracked):
            skipped_env.append(rel)
            if rel in tracked and os.path.lexists(app_dir / rel):
                listing.excluded_tracked.append(rel)
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
    if listing.excluded_tracked:
        listing.notes.append(_tracked_note(listing.excluded_tracked, settings_path))
    return listing


def _list_plain(app_dir: Path, settings_path: str | None) -> Listing:
    # Nothing is tracked outside git: every env file is treated as the developer's own.
    listing = Listing(files=[], repo=None, settings_path=settings_path)
    skipped_env: list[str] = []
    for dirpath, dirnames, filenames in os.walk(app_dir):
        rel_dir = Path(dirpath).relative_to(app_dir).as_posix()
        prefix = "" if rel_dir == "." else f"{rel_dir}/"
        keep = []
        for name in sorted(dirnames):
            rel = f"{prefix}{name}"
            if name in NON_GIT_SKIP_DIRS:
                continue
            if is_excluded(rel, settings_path, tracked=False):
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
            if is_excluded(rel, settings_path, tracked=False):
                skipped_env.append(rel)
            else:
                listing.files.append(rel)
    listing.files.sort()
    if skipped_env:
        listing.notes.append(_env_note(sorted(skipped_env)))
    return listing


def _env_note(paths: list[str]) -> str:
    return (
        "not copied (the delivered settings path, untracked env files and .staging/ never "
        f"are): {', '.join(paths)}"
    )


def _tracked_note(paths: list[str], settings_path: str | None) -> str:
    return (
        f"tracked but left out of the copy and the tree hash (the delivered settings path "
        f"{settings_path!r}; staging writes its own there): {', '.join(paths)}. "
        "Production receives the committed file: untrack it if it holds real settings"
    )
