"""An isolated copy of the app as it would be deployed, in a temporary directory.

The run writes into the copy (settings files, bytecode, logs of the app's own), so files
are real copies, never hardlinks into the developer's tree. Symlinks that stay inside the
app are recreated as relative links (an absolute link would point back into the
developer's tree); links leaving the app are skipped with a note.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

from staging.workspace.files import DEFAULT_SETTINGS_PATH, list_deployable


class Workspace:
    """`root` is the temp dir this owns; the app's copy is `app` inside it."""

    def __init__(
        self, root: Path, app: Path, source: Path, files: list[str], notes: list[str]
    ) -> None:
        self.root = root
        self.app = app
        self.source = source
        self.files = files
        self.notes = notes
        self._removed = False

    @classmethod
    def create(
        cls,
        app_dir: Path,
        dest_root: Path | None = None,
        settings_path: str | None = DEFAULT_SETTINGS_PATH,
    ) -> Workspace:
        """Copy the deployable files of `app_dir`; remove the partial copy if that fails.

        `settings_path` (the delivered one) is never copied: staging writes its own there.
        """
        source = Path(app_dir).resolve()
        listing = list_deployable(source, settings_path)
        root = Path(tempfile.mkdtemp(prefix="staging-ws-", dir=dest_root))
        workspace = cls(root, root / "app", source, [], list(listing.notes))
        try:
            workspace.app.mkdir()
            for rel in listing.files:
                if workspace._copy_one(rel):
                    workspace.files.append(rel)
        except BaseException:
            workspace.remove()
            raise
        return workspace

    def _copy_one(self, rel: str) -> bool:
        src = self.source / rel
        dest = self.app / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not src.is_symlink():
            shutil.copy2(src, dest)
            return True
        target = os.path.realpath(src)
        if target != str(self.source) and not target.startswith(f"{self.source}{os.sep}"):
            self.notes.append(
                f"skipped symlink {rel} -> {os.readlink(src)}: it points outside the app"
            )
            return False
        link = os.path.relpath(target, start=os.path.realpath(src.parent))
        # The link's parent in the copy mirrors the real parent, so the relative text resolves.
        os.symlink(link, dest)
        return True

    def remove(self) -> None:
        """Delete the copy; safe to call twice."""
        if self._removed:
            return
        shutil.rmtree(self.root, ignore_errors=True)
        self._removed = True

    def __enter__(self) -> Workspace:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"Workspace(app={self.app}, files={len(self.files)})"
