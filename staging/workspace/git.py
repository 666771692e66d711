"""A small, safe way to ask git about the app's repository.

Every call runs with a scrubbed environment: `GIT_DIR`/`GIT_INDEX_FILE`/`GIT_WORK_TREE`
inherited from a hook or a wrapper would point git at the wrong repository or, worse,
at the developer's real index. `GIT_OPTIONAL_LOCKS=0` stops read-only commands from
opportunistically refreshing the real index.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from staging.errors import StagingError

# Config that would make even a temporary-index `git add` write into `.git` beyond objects.
_SAFE_CONFIG = (
    "-c",
    "core.splitIndex=false",
    "-c",
    "core.fsmonitor=false",
    "-c",
    "core.untrackedCache=false",
    "-c",
    "gc.auto=0",
)


class GitError(StagingError):
    """git failed on the app's repository (not a problem of the app's code)."""


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_OPTIONAL_LOCKS="0", GIT_LITERAL_PATHSPECS="1", GIT_TERMINAL_PROMPT="0")
    env.update(extra or {})
    return env


def run_git(
    args: Sequence[str],
    cwd: Path,
    *,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
) -> bytes:
    """Run git and return stdout; raise `GitError` with git's stderr on failure."""
    proc = subprocess.run(
        ["git", *_SAFE_CONFIG, *args],
        cwd=cwd,
        env=git_env(env),
        input=stdin,
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        stderr = proc.stderr.decode(errors="replace").strip()
        raise GitError(
            f"git {args[0]} failed in {cwd}",
            expected="exit status 0",
            observed=f"exit status {proc.returncode}: {stderr.splitlines()[-1] if stderr else ''}",
            evidence=stderr.splitlines()[-20:],
            hint="run the same git command in that directory to see why "
            "(a corrupt repository or 'dubious ownership' are the usual causes)",
        )
    return proc.stdout


@dataclass(frozen=True)
class GitRepo:
    """The repository around an app dir; `prefix` is the app's path inside it ('' or 'a/b/')."""

    toplevel: Path
    prefix: str


def find_repo(app_dir: Path) -> GitRepo | None:
    """The enclosing repository, or None when the app is not in one (or git is missing)."""
    if shutil.which("git") is None:
        return None
    proc = subprocess.run(
        ["git", "rev-parse", "--show-toplevel", "--show-prefix"],
        cwd=app_dir,
        env=git_env(),
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        stderr = proc.stderr.decode(errors="replace")
        if "not a git repository" in stderr:
            return None
        raise GitError(
            f"git cannot read the repository around {app_dir}",
            expected="a readable git repository (or no repository at all)",
            observed=stderr.strip().splitlines()[-1] if stderr.strip() else "no output",
            evidence=stderr.strip().splitlines()[-20:],
            hint="if git reports 'dubious ownership', run: "
            f"git config --global --add safe.directory {app_dir}",
        )
    lines = proc.stdout.decode().splitlines()
    toplevel = Path(lines[0])
    prefix = lines[1] if len(lines) > 1 else ""
    return GitRepo(toplevel=toplevel, prefix=prefix)
