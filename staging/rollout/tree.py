"""The last green tree, materialised from git objects into a second workspace.

`last-green.json` names a git tree id (the app's subtree, written by `tree_hash` with the
uncommitted changes of that run included), so `git archive <tree>` gives exactly what
ran green, whatever the branch or the working copy hold now. A tree id that git no longer
has (a re-clone, `git gc` pruning an unreferenced tree after two weeks) is a skip with a
note, never a failure of the code under test.
"""

from __future__ import annotations

import io
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from staging.gate.store import StoreError, VerdictStore
from staging.workspace import GitError, Workspace
from staging.workspace.git import find_repo, run_git


@dataclass(frozen=True)
class GreenTree:
    tree: str
    commit: str | None
    run_id: str | None

    @property
    def label(self) -> str:
        return (self.commit or self.tree)[:12]


class NoGreenTree(Exception):
    """Why there is nothing to roll out from; the phase skips with this as its note."""


def last_green_tree(app_dir: Path) -> GreenTree:
    try:
        green = VerdictStore(app_dir).last_green()
    except StoreError as exc:
        raise NoGreenTree(f"the last green record is unreadable: {exc}") from exc
    if not green or not green.get("tree"):
        raise NoGreenTree("no green run of this app recorded yet (.staging/last-green.json)")
    tree = str(green["tree"])
    if len(tree) not in (40, 64) or any(c not in "0123456789abcdef" for c in tree):
        raise NoGreenTree(f"the last green tree {tree[:16]!r} is not a git tree id")
    commit = green.get("commit")
    return GreenTree(tree=tree, commit=str(commit) if commit else None, run_id=green.get("run_id"))


def materialise(app_dir: Path, green: GreenTree, dest_root: Path | None) -> Workspace:
    """A workspace holding the files of `green.tree` (the app dir's subtree) under `app/`."""
    repo = find_repo(app_dir)
    if repo is None:
        raise NoGreenTree(f"{app_dir} is no longer in a git repository")
    try:
        # From the top: git refuses to archive from an untracked directory.
        archive = run_git(["archive", "--format=tar", green.tree], repo.toplevel)
    except GitError as exc:
        raise NoGreenTree(
            f"git no longer has the last green tree {green.tree[:12]} ({exc.observed})"
        ) from exc
    root = Path(tempfile.mkdtemp(prefix="staging-ws-green-", dir=dest_root))
    workspace = Workspace(root, root / "app", app_dir, [], [])
    try:
        workspace.app.mkdir()
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(workspace.app, filter="data")
            workspace.files.extend(m.name for m in tar.getmembers() if m.isfile())
    except BaseException:
        workspace.remove()
        raise
    return workspace
