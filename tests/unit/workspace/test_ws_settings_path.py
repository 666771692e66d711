"""The copy and the tree hash share one rule: only the delivered settings path and
`.staging/` are left out of what is tracked; a developer's delivered file is never copied."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from staging.workspace import Workspace, deployable_files, tree_hash

Put = Callable[..., Path]
Git = Callable[..., str]


@pytest.fixture
def app(repo: Path, git: Git, put: Put) -> Path:
    put(repo, "app.py")
    put(repo, ".env.production", "FEATURE=on\n")
    put(repo, ".env", "DB_PASSWORD=committed-by-mistake\n")
    put(repo, "secrets/db_password", "committed-secret\n")
    git(repo, "add", "-f", "app.py", ".env.production", ".env", "secrets")
    git(repo, "commit", "-q", "-m", "app")
    put(repo, ".env.local", "DB_PASSWORD=developer-only\n")  # untracked, not ignored
    return repo


@pytest.mark.parametrize(
    ("settings_path", "left_out"),
    [
        (".env", [".env"]),
        ("secrets", ["secrets/db_password"]),
        ("./secrets/", ["secrets/db_password"]),
    ],
)
def test_copy_and_hash_leave_out_exactly_the_delivered_path(
    app: Path, settings_path: str, left_out: list[str]
) -> None:
    tracked = [".env", ".env.production", ".gitignore", "app.py", "secrets/db_password"]
    expected = [f for f in tracked if f not in left_out]
    assert deployable_files(app, settings_path) == expected
    info = tree_hash(app, settings_path)
    assert list(info.excluded_tracked) == left_out and info.files == len(expected)
    with Workspace.create(app, settings_path=settings_path) as ws:
        assert ws.files == expected
        for rel in left_out:
            assert not (ws.app / rel).exists()
        assert not (ws.app / ".env.local").exists()
        assert (ws.app / ".env.production").read_text() == "FEATURE=on\n"
        assert any("tracked but left out" in n and left_out[0] in n for n in ws.notes)


def test_the_developers_delivered_file_is_never_copied(app: Path, put: Put) -> None:
    put(app, ".env", "DB_PASSWORD=edited-locally\n")  # tracked, and edited in the work tree
    with Workspace.create(app) as ws:
        assert not (ws.app / ".env").exists()
        copied = "".join(p.read_text() for p in ws.app.rglob("*") if p.is_file())
        assert "edited-locally" not in copied and "developer-only" not in copied
