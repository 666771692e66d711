"""The workspace copy: exactly the deployable files, never a developer's env file."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from staging.workspace import Workspace, deployable_files, is_env_file

Put = Callable[..., Path]
Git = Callable[..., str]


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        (".env", True),
        (".env.local", True),
        (".env.production", True),
        (".envrc", True),
        (".env.example", False),
        (".env.sample", False),
        (".env.template", False),
        ("env.py", False),
        ("settings.env", False),
    ],
)
def test_env_file_rule(name: str, secret: bool) -> None:
    assert is_env_file(name) is secret


@pytest.fixture
def busy_repo(repo: Path, git: Git, put: Put, tmp_path: Path) -> Path:
    """Tracked, modified, staged, untracked, ignored, deleted, env files and symlinks."""
    put(repo, "app.py", "v1\n")
    put(repo, "pkg/mod.py")
    put(repo, "deleted.py")
    put(repo, ".env.example", "DB_PASSWORD=\n")
    put(repo, "config/.env", "DB_PASSWORD=committed-secret\n")
    put(repo, "run.sh", "#!/bin/sh\n").chmod(0o755)
    os.symlink("pkg/mod.py", repo / "link_in")
    outside = put(tmp_path, "outside.txt")
    os.symlink(outside, repo / "link_out")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "app")
    put(repo, "app.py", "v2 uncommitted\n")
    put(repo, "staged.py")
    git(repo, "add", "staged.py")
    (repo / "deleted.py").unlink()
    put(repo, "untracked.py")
    put(repo, "spaced name ü.txt")
    put(repo, "ignored.txt")
    put(repo, "debug.log")
    put(repo, "pkg/__pycache__/mod.cpython-311.pyc", b"\0")
    put(repo, ".env", "DB_PASSWORD=developer-secret\n")
    put(repo, ".env.local", "X=1\n")
    put(repo, ".staging/runs/1/verdict.json", "{}")
    return repo


EXPECTED = [
    ".env.example",
    ".gitignore",
    "app.py",
    "config/.env",  # tracked and not the delivered settings path (.env): deployed
    "link_in",
    "link_out",
    "pkg/mod.py",
    "run.sh",
    "spaced name ü.txt",
    "staged.py",
    "untracked.py",
]


def test_git_listing(busy_repo: Path) -> None:
    assert deployable_files(busy_repo) == EXPECTED


def test_git_copy_is_exact_and_leaves_the_tree_alone(
    busy_repo: Path, tmp_path: Path, snap: Callable[[Path], Any]
) -> None:
    before = snap(busy_repo)
    dest = tmp_path / "dest"
    dest.mkdir()
    with Workspace.create(busy_repo, dest_root=dest) as ws:
        assert ws.root.parent == dest
        assert ws.app == ws.root / "app"
        expected = [f for f in EXPECTED if f != "link_out"]
        assert ws.files == expected
        copied = sorted(
            str(p.relative_to(ws.app)) for p in ws.app.rglob("*") if p.is_file() or p.is_symlink()
        )
        assert copied == expected
        assert (ws.app / "app.py").read_text() == "v2 uncommitted\n"
        assert os.access(ws.app / "run.sh", os.X_OK)
        link = ws.app / "link_in"
        assert link.is_symlink() and not os.path.isabs(os.readlink(link))
        assert link.resolve() == (ws.app / "pkg" / "mod.py").resolve()
        assert any("link_out" in note and "outside" in note for note in ws.notes)
        assert any(".env" in note for note in ws.notes)
        assert not (ws.app / "app.py").samefile(busy_repo / "app.py")
        assert "developer-secret" not in "".join(
            p.read_text() for p in ws.app.rglob("*.*") if p.is_file()
        )
    assert not ws.root.exists()
    assert snap(busy_repo) == before


def test_subdirectory_of_a_repo(repo: Path, git: Git, put: Put) -> None:
    put(repo, "README.md")
    put(repo, "services/api/main.py")
    put(repo, "services/app/worker.py")
    put(repo, "services/app/.env", "SECRET=1\n")
    put(repo, "services/app/debug.log")  # ignored by the root .gitignore
    git(repo, "add", "README.md", "services/api", "services/app/worker.py")
    git(repo, "commit", "-q", "-m", "mono")
    put(repo, "services/app/new.py")
    app = repo / "services" / "app"
    assert deployable_files(app) == ["new.py", "worker.py"]
    with Workspace.create(app) as ws:
        assert sorted(p.name for p in ws.app.iterdir()) == ["new.py", "worker.py"]


def test_plain_directory(tmp_path: Path, put: Put) -> None:
    app = tmp_path / "plain"
    for rel in (
        "main.py",
        "pkg/a.py",
        ".env.sample",
        ".env",
        ".env.dev",
        "pkg/__pycache__/a.pyc",
        ".venv/bin/python",
        ".nox/x",
        "node_modules/m/index.js",
        ".staging/runs/x",
        "ignored-by-nobody.log",
    ):
        put(app, rel)
    os.symlink("pkg", app / "pkg_link")
    expected = [".env.sample", "ignored-by-nobody.log", "main.py", "pkg/a.py", "pkg_link"]
    assert deployable_files(app) == expected
    with Workspace.create(app) as ws:
        assert ws.files == expected
        assert (ws.app / "pkg_link").is_symlink()
        assert (ws.app / "pkg_link" / "a.py").is_file()


def test_remove_is_idempotent(tmp_path: Path, put: Put) -> None:
    put(tmp_path / "a", "main.py")
    ws = Workspace.create(tmp_path / "a")
    ws.remove()
    ws.remove()
    assert not ws.root.exists()


def test_failed_copy_leaves_nothing_behind(
    tmp_path: Path, put: Put, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(3):
        put(tmp_path / "a", f"f{i}.py")
    dest = tmp_path / "dest"
    dest.mkdir()
    calls = []

    def flaky_copy(src: Any, dst: Any, **kwargs: Any) -> Any:
        calls.append(src)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_copy(src, dst, **kwargs)

    real_copy = shutil.copy2
    monkeypatch.setattr(shutil, "copy2", flaky_copy)
    with pytest.raises(OSError, match="No space"):
        Workspace.create(tmp_path / "a", dest_root=dest)
    assert list(dest.iterdir()) == []
