"""The tree hash keys verdicts: content of what would be deployed, nothing else."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from staging.workspace import GitError, changed_files, diff_text, tree_hash

Put = Callable[..., Path]
Git = Callable[..., str]


@pytest.fixture
def app(repo: Path, git: Git, put: Put) -> Path:
    put(repo, "app.py", "print('v1')\n")
    put(repo, "settings.py", 'env_file = ".env"\n')
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "app")
    return repo


def git_state(repo: Path) -> dict[str, Any]:
    """Everything in .git except the object store, which write-tree may add to."""
    state = {}
    for path in sorted((repo / ".git").rglob("*")):
        rel = path.relative_to(repo / ".git").as_posix()
        if rel.startswith("objects") or not path.is_file():
            continue
        state[rel] = path.read_bytes()
    return state


def test_clean_repo_hash_is_the_commit_tree(app: Path, git: Git) -> None:
    info = tree_hash(app)
    assert info.hash == git(app, "rev-parse", "HEAD^{tree}").strip()
    assert info.commit == git(app, "rev-parse", "HEAD").strip()
    assert info.dirty is False
    assert info.files == 3
    assert info.kind == "git"
    assert tree_hash(app) == info  # stable


def test_one_byte_changes_the_hash_and_reverting_restores_it(app: Path, put: Put) -> None:
    clean = tree_hash(app).hash
    put(app, "app.py", "print('v2')\n")
    changed = tree_hash(app)
    assert changed.hash != clean
    assert changed.dirty is True
    put(app, "app.py", "print('v1')\n")
    assert tree_hash(app).hash == clean
    assert tree_hash(app).dirty is False


def test_untracked_files_count_env_and_ignored_files_do_not(app: Path, put: Put) -> None:
    clean = tree_hash(app).hash
    put(app, ".env", "DB_PASSWORD=x\n")
    put(app, ".env.local", "X=1\n")
    put(app, "debug.log", "noise\n")
    put(app, ".staging/verdicts/x.json", "{}")
    assert tree_hash(app).hash == clean
    put(app, "new_module.py", "x = 1\n")
    assert tree_hash(app).hash != clean


def test_mode_change_changes_the_hash(app: Path) -> None:
    clean = tree_hash(app).hash
    (app / "app.py").chmod(0o755)
    assert tree_hash(app).hash != clean


def test_committed_env_file_is_excluded_but_not_dirty(app: Path, git: Git, put: Put) -> None:
    put(app, ".env", "DB_PASSWORD=committed\n")
    git(app, "add", "-f", ".env")
    git(app, "commit", "-q", "-m", "oops, a committed .env")
    info = tree_hash(app)
    assert info.dirty is False
    # The committed .env (the delivered settings path) is in the commit's tree but never
    # in the deployed one, and the tree says so.
    head_tree = git(app, "rev-parse", "HEAD^{tree}").strip()
    assert changed_files(app, info.hash, head_tree) == ["A .env"]
    assert info.excluded_tracked == (".env",)


def test_tracked_dotfiles_are_in_the_hash(app: Path, git: Git, put: Put) -> None:
    """The issue's case: a tracked `.env.production` changes what production runs."""
    put(app, ".env.production", "FEATURE=on\n")
    put(app, ".envrc", "layout python\n")
    git(app, "add", "-f", ".env.production", ".envrc")
    git(app, "commit", "-q", "-m", "prod settings")
    info = tree_hash(app)
    assert info.hash == git(app, "rev-parse", "HEAD^{tree}").strip()
    assert info.excluded_tracked == () and info.dirty is False
    put(app, ".env.production", "FEATURE=off\n")
    changed = tree_hash(app)
    assert changed.hash != info.hash and changed.dirty is True
    assert changed_files(app, info.hash, changed.hash) == ["M .env.production"]


def test_only_the_configured_settings_path_is_excluded(app: Path, git: Git, put: Put) -> None:
    put(app, ".env", "A=1\n")
    put(app, "secrets/db_password", "s3cret\n")
    git(app, "add", "-f", ".env", "secrets")
    git(app, "commit", "-q", "-m", "both")
    # A secrets dir as the settings path: everything in it is left out, `.env` is deployed.
    info = tree_hash(app, "secrets")
    assert info.excluded_tracked == ("secrets/db_password",) and info.dirty is False
    head_tree = git(app, "rev-parse", "HEAD^{tree}").strip()
    assert changed_files(app, info.hash, head_tree) == ["A secrets/db_password"]
    put(app, "secrets/db_password", "other\n")
    assert tree_hash(app, "secrets").hash == info.hash
    put(app, ".env", "A=2\n")
    assert tree_hash(app, "secrets").hash != info.hash
    # `./secrets/` is the same path; one outside the app excludes nothing.
    assert tree_hash(app, "./secrets/").excluded_tracked == ("secrets/db_password",)
    assert tree_hash(app, "../elsewhere.env").excluded_tracked == ()


def test_untracked_env_files_stay_out_and_staging_state_too(app: Path, put: Put) -> None:
    clean = tree_hash(app)
    put(app, ".env.local", "DB_PASSWORD=mine\n")  # not ignored by this repo's .gitignore
    put(app, ".staging/runs/r1/verdict.json", "{}")
    assert tree_hash(app) == clean


def test_the_real_index_and_git_dir_are_untouched(app: Path, put: Put) -> None:
    put(app, "app.py", "print('dirty')\n")
    put(app, "untracked.py")
    (app / "settings.py").unlink()
    index_before = (app / ".git" / "index").read_bytes()
    state_before = git_state(app)
    tree_hash(app)
    assert (app / ".git" / "index").read_bytes() == index_before
    assert git_state(app) == state_before


def test_subdirectory_hashes_only_the_app_subtree(repo: Path, git: Git, put: Put) -> None:
    put(repo, "services/app/worker.py")
    put(repo, "services/other/x.py")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "mono")
    app = repo / "services" / "app"
    info = tree_hash(app)
    assert info.hash == git(repo, "rev-parse", "HEAD:services/app").strip()
    assert info.dirty is False and info.files == 1
    put(repo, "services/other/x.py", "changed\n")
    assert tree_hash(app) == info
    put(app, "worker.py", "changed\n")
    assert tree_hash(app).hash != info.hash


def test_changed_files_and_diff_between_runs(app: Path, put: Put) -> None:
    green = tree_hash(app).hash
    put(app, "settings.py", "env_file = None\n")
    put(app, "added.py")
    (app / "app.py").unlink()
    red = tree_hash(app).hash
    assert changed_files(app, green, red) == ["A added.py", "D app.py", "M settings.py"]
    diff = diff_text(app, green, red, ["settings.py"])
    assert '-env_file = ".env"' in diff and "+env_file = None" in diff
    assert "added.py" not in diff
    assert "added.py" in diff_text(app, green, red, ["added.py", "app.py"])
    assert diff_text(app, green, red, []) == ""


def test_diff_paths_are_app_relative_in_a_subdirectory(repo: Path, git: Git, put: Put) -> None:
    put(repo, "svc/settings.py", "a = 1\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "svc")
    green = tree_hash(repo / "svc").hash
    put(repo, "svc/settings.py", "a = 2\n")
    red = tree_hash(repo / "svc").hash
    assert changed_files(repo / "svc", green, red) == ["M settings.py"]
    assert "+a = 2" in diff_text(repo / "svc", green, red, ["settings.py"])


def test_unknown_tree_is_a_clear_error(app: Path) -> None:
    with pytest.raises(GitError, match="not in the object database"):
        changed_files(app, "0" * 40, tree_hash(app).hash)


def test_repo_without_commits(tmp_path: Path, git: Git, put: Put) -> None:
    root = tmp_path / "fresh"
    root.mkdir()
    git(root, "init", "-q")
    put(root, "a.py")
    info = tree_hash(root)
    assert info.commit is None and info.dirty is True and info.files == 1


def test_plain_directory_hash(tmp_path: Path, put: Put) -> None:
    app = tmp_path / "plain"
    put(app, "a.py", "1\n")
    put(app, "pkg/b.py", "2\n")
    first = tree_hash(app)
    assert first.kind == "files" and first.commit is None and first.files == 2
    assert len(first.hash) == 64
    assert tree_hash(app) == first
    put(app, ".env", "SECRET=1\n")
    put(app, "pkg/__pycache__/b.pyc", b"\0")
    assert tree_hash(app) == first
    put(app, "a.py", "2\n")
    assert tree_hash(app).hash != first.hash
    put(app, "a.py", "1\n")
    os.chmod(app / "a.py", 0o755)
    assert tree_hash(app).hash != first.hash
    with pytest.raises(GitError, match="not in a git repository"):
        changed_files(app, first.hash, first.hash)
