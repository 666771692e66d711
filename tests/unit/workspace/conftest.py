"""Throwaway git repositories for the workspace tests (git itself is service-free)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

Git = Callable[..., str]


def _git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.invalid",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.invalid",
        GIT_CONFIG_NOSYSTEM="1",
    )
    return env


def run_git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", *args],
        cwd=cwd,
        env=_git_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout


def write(root: Path, rel: str, content: str | bytes = "x\n") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """An empty repository with one initial commit of a .gitignore."""
    root = tmp_path / "repo"
    root.mkdir()
    run_git(root, "init", "-q")
    write(root, ".gitignore", "ignored.txt\n*.log\n.staging/\n__pycache__/\n")
    run_git(root, "add", ".gitignore")
    run_git(root, "commit", "-q", "-m", "init")
    return root


def snapshot(root: Path) -> dict[str, tuple[int, float, bytes]]:
    """Every entry under root with mode, mtime and content (or link text)."""
    out: dict[str, tuple[int, float, bytes]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            if path.is_symlink():
                data = os.readlink(path).encode()
            elif path.is_file():
                data = path.read_bytes()
            else:
                data = b""
            out[str(path.relative_to(root))] = (st.st_mode, st.st_mtime, data)
    return out


# Helpers as fixtures, so test modules need no import path tricks.
@pytest.fixture
def git() -> Callable[..., str]:
    return run_git


@pytest.fixture
def put() -> Callable[..., Path]:
    return write


@pytest.fixture
def snap() -> Callable[[Path], dict[str, tuple[int, float, bytes]]]:
    return snapshot
