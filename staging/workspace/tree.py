"""The content hash of what would be deployed, and what changed between two such hashes.

For a git repository the hash is a real git tree id: the deployable files (see
`files.py`, uncommitted and untracked-not-ignored changes included) are added to a
*temporary* index (`GIT_INDEX_FILE`) and `git write-tree --prefix=<app subdir>/` writes
the app's subtree into the object database, so a later run can diff against it. The
developer's real index is never read for writing nor written. Outside git the hash is
a sha256 over sorted (path, mode, content) and cannot be diffed.

Both follow `files.py`'s rule, with the same delivered settings path as the copy, so
the hash is of exactly what runs: pass the app's `[tool.staging.settings] path`.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from staging.workspace.files import (
    DEFAULT_SETTINGS_PATH,
    Listing,
    is_excluded,
    list_deployable,
)
from staging.workspace.git import GitError, GitRepo, find_repo, run_git

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


@dataclass(frozen=True)
class TreeInfo:
    hash: str
    commit: str | None
    dirty: bool
    files: int
    kind: str = "git"  # "git": a git tree id; "files": sha256 of a directory outside git
    excluded_tracked: tuple[str, ...] = ()  # tracked files left out (the settings path)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def tree_hash(app_dir: Path, settings_path: str | None = DEFAULT_SETTINGS_PATH) -> TreeInfo:
    listing = list_deployable(Path(app_dir), settings_path)
    if listing.repo is None:
        digest = _sha256_tree(Path(app_dir), listing.files)
        return TreeInfo(
            hash=digest, commit=None, dirty=False, files=len(listing.files), kind="files"
        )
    return _git_tree(Path(app_dir), listing.repo, listing)


def _git_tree(app_dir: Path, repo: GitRepo, listing: Listing) -> TreeInfo:
    with tempfile.TemporaryDirectory(prefix="staging-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        if listing.files:
            # -f: tracked-but-ignored files are deployed too; the list is already filtered.
            paths = b"\0".join(os.fsencode(f) for f in listing.files)
            run_git(
                ["add", "-f", "--pathspec-from-file=-", "--pathspec-file-nul"],
                app_dir,
                env=env,
                stdin=paths,
            )
            args = ["write-tree"] + ([f"--prefix={repo.prefix}"] if repo.prefix else [])
            tree = run_git(args, app_dir, env=env).decode().strip()
        else:
            empty = run_git(["hash-object", "-t", "tree", "-w", "--stdin"], app_dir, stdin=b"")
            tree = empty.decode().strip()
    commit = _rev(app_dir, "HEAD")
    head_tree = _rev(app_dir, f"HEAD:{repo.prefix.rstrip('/')}" if repo.prefix else "HEAD^{tree}")
    # Left-out tracked files differ from HEAD by construction; that is not a change.
    dirty = head_tree is None or any(
        not is_excluded(change.split(" ", 1)[1], listing.settings_path)
        for change in _diff_names(repo, head_tree, tree)
    )
    return TreeInfo(
        hash=tree,
        commit=commit,
        dirty=dirty,
        files=len(listing.files),
        excluded_tracked=tuple(listing.excluded_tracked),
    )


def _rev(app_dir: Path, spec: str) -> str | None:
    try:
        return run_git(["rev-parse", "--verify", "-q", spec], app_dir).decode().strip() or None
    except GitError:
        return None


def _sha256_tree(app_dir: Path, files: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for rel in files:
        path = app_dir / rel
        mode = os.lstat(path).st_mode
        if stat.S_ISLNK(mode):
            kind, content = b"120000", os.fsencode(os.readlink(path))
        else:
            kind = b"100755" if mode & stat.S_IXUSR else b"100644"
            content = path.read_bytes()
        digest.update(b"%s\0%s\0%d\0" % (os.fsencode(rel), kind, len(content)))
        digest.update(content)
    return digest.hexdigest()


def _require_repo(app_dir: Path) -> GitRepo:
    repo = find_repo(Path(app_dir))
    if repo is None:
        raise GitError(
            f"{app_dir} is not in a git repository, so trees cannot be diffed",
            expected="a git repository",
            observed="a plain directory (tree hashes are sha256 digests)",
            hint="put the app under git to see what changed since the last green run",
        )
    return repo


def _require_trees(repo: GitRepo, *trees: str) -> None:
    for tree in trees:
        try:
            run_git(["cat-file", "-e", f"{tree}^{{tree}}"], repo.toplevel)
        except GitError as exc:
            raise GitError(
                f"tree {tree} is not in the object database of {repo.toplevel}",
                expected="a tree written by an earlier staging run",
                observed="missing object (git gc prunes unreferenced trees after ~2 weeks)",
                hint="the diff against that run is no longer available; compare commits instead",
            ) from exc


def _diff_names(repo: GitRepo, old_tree: str, new_tree: str) -> list[str]:
    out = run_git(
        ["diff-tree", "-r", "-z", "--no-renames", "--name-status", old_tree, new_tree],
        repo.toplevel,
    )
    fields = [os.fsdecode(f) for f in out.split(b"\0") if f]
    return [f"{status} {path}" for status, path in zip(fields[::2], fields[1::2], strict=True)]


def changed_files(app_dir: Path, old_tree: str, new_tree: str) -> list[str]:
    """`["M path", "A path", "D path"]` between two tree hashes of the same app."""
    repo = _require_repo(app_dir)
    _require_trees(repo, old_tree, new_tree)
    return _diff_names(repo, old_tree, new_tree)


def diff_text(app_dir: Path, old_tree: str, new_tree: str, paths: Sequence[str]) -> str:
    """The unified diff between two trees for `paths` (app-relative); no paths, no diff."""
    if not paths:
        return ""
    repo = _require_repo(app_dir)
    _require_trees(repo, old_tree, new_tree)
    # Run from the top level: the trees are rooted at the app dir, so app-relative
    # pathspecs must not get the current directory's prefix added.
    args = ["diff", "--no-color", "--no-ext-diff", "--no-textconv", old_tree, new_tree]
    out = run_git([*args, "--", *paths], repo.toplevel)
    return out.decode("utf-8", errors="replace")
