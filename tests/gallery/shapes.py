"""The gallery's app shapes and how to prepare a copy of one for a run.

`prepare` copies an app into a fresh git repository, runs `staging init`, commits, then
applies a fault: "incident" (the settings module's `env_file` line removed) or
"ignored-import" (the worker imports a module that .gitignore keeps out of the deploy).
`SERVICE_SHAPES` ship their own hand-written `[tool.staging]` (extra services, which
`staging init` does not write): `prepare` commits them as they are.
Apps with `requirements` run in their own venv, made once per requirements file under a
cache dir (`STAGING_GALLERY_CACHE`, default ~/.cache/staging-gallery) and linked as the
app's `.venv`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

GALLERY = Path(__file__).resolve().parent
FAULTS = ("none", "incident", "ignored-import")
EXPECTED_CODE = {"none": 0, "incident": 1, "ignored-import": 1}  # staging run's exit code
_IGNORE = shutil.ignore_patterns(
    ".env", ".staging", ".venv", "__pycache__", "*.pyc", ".pytest_cache", "*.egg-info"
)


@dataclass(frozen=True)
class Shape:
    name: str  # dir under tests/gallery
    settings_file: str  # relative to the project dir: holds `env_file=".env"`
    worker_file: str  # gets the ignored import
    local_module: str  # the git-ignored file, relative to the project dir
    import_line: str
    project: str = "."  # the app's project dir inside the copied repo (monorepo)
    requirements: str | None = None  # the app's own venv, from this file
    description: str = ""
    configured: bool = False  # ships its own [tool.staging]; `staging init` is not run


SHAPES: tuple[Shape, ...] = (
    Shape(
        "src-setuptools",
        "src/ledger/settings.py",
        "src/ledger/worker.py",
        "src/ledger/local_only.py",
        "import ledger.local_only  # noqa: F401",
        description="src layout, setuptools packages.find where=[src]",
    ),
    Shape(
        "poetry-lib",
        "lib/invoicer/config.py",
        "lib/invoicer/worker.py",
        "lib/invoicer/local_only.py",
        "import invoicer.local_only  # noqa: F401",
        description="poetry packages from lib/, env_prefix, task queue from a constant",
    ),
    Shape(
        "single-file",
        "app.py",
        "app.py",
        "local_only.py",
        "import local_only  # noqa: F401",
        description="worker and starter in one file behind a __main__ switch",
    ),
    Shape(
        "two-workers",
        "shipping/settings.py",
        "shipping/emails_worker.py",
        "shipping/local_only.py",
        "import shipping.local_only  # noqa: F401",
        description="two workers on two task queues, an outbound webhook",
    ),
    Shape(
        "dsn-nested",
        "shop/settings.py",
        "shop/worker.py",
        "shop/local_only.py",
        "import shop.local_only  # noqa: F401",
        description="DSN-only, env_prefix, nested models, an alias, an optional key, sql/*.sql",
    ),
    Shape(
        "monorepo",
        "reports/settings.py",
        "reports/worker.py",
        "reports/local_only.py",
        "import reports.local_only  # noqa: F401",
        project="services/reports",
        description="the app in services/reports of a larger repository",
    ),
    Shape(
        "alembic-app",
        "catalog/settings.py",
        "catalog/worker.py",
        "catalog/local_only.py",
        "import catalog.local_only  # noqa: F401",
        requirements="requirements.txt",
        description="alembic migrations; its own .venv (alembic is not staging's)",
    ),
    Shape(
        "venv-pins",
        "legacy/settings.py",
        "legacy/worker.py",
        "legacy/local_only.py",
        "import legacy.local_only  # noqa: F401",
        requirements="requirements.txt",
        description="its own .venv pinning older temporalio / pydantic / psycopg",
    ),
)
# Apps that need more than Postgres + Temporal; exercised by their own integration tests
# (tests/integration/test_gallery_redis.py), not by test_gallery.py's init matrix.
SERVICE_SHAPES: tuple[Shape, ...] = (
    Shape(
        "redis-cache",
        "pricecache/settings.py",
        "pricecache/worker.py",
        "pricecache/local_only.py",
        "import pricecache.local_only  # noqa: F401",
        description="a third service: [[tool.staging.services]] redis, REDIS_URL in Settings",
        configured=True,
    ),
)
BY_NAME = {s.name: s for s in (*SHAPES, *SERVICE_SHAPES)}


def git(repo: Path, *args: str) -> str:
    # The ceiling keeps git from adopting a repository around the copy (say, this one).
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(repo.parent)}
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        env.pop(var, None)
    ident = ["-c", "user.name=gallery", "-c", "user.email=gallery@staging.invalid"]
    result = subprocess.run(
        ["git", *ident, "-c", "commit.gpgsign=false", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} in {repo}: {result.stderr.strip()}")
    return result.stdout


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "staging-gallery"
    return Path(os.environ.get("STAGING_GALLERY_CACHE", default))


def venv_for(requirements: Path) -> Path:
    """A venv with exactly these requirements, made once (under a lock) and reused."""
    key = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    venv = root / f"venv-{key}"
    with _locked(root / f"venv-{key}.lock"):
        if (venv / ".complete").exists():
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-r"]
        done = subprocess.run([*pip, str(requirements)], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"pip install -r {requirements} failed:\n{done.stderr[-3000:]}")
        (venv / ".complete").write_text(requirements.read_text())
    return venv


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def copy_app(shape: Shape, dest: Path, *, venv: bool = True) -> Path:
    """A fresh copy of the app's repository at `dest`; returns the project dir."""
    shutil.copytree(GALLERY / shape.name, dest, ignore=_IGNORE)
    project = dest / shape.project
    if shape.requirements and venv:
        (project / ".venv").symlink_to(
            venv_for(GALLERY / shape.name / shape.project / shape.requirements)
        )
    return project


def init(project: Path) -> str:
    """`staging init` on the project, as a user runs it; returns what it printed."""
    result = subprocess.run(
        [sys.executable, "-m", "staging", "init", "--project", str(project)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"staging init failed ({result.returncode}):\n{result.stderr}")
    return result.stderr


def commit_all(repo: Path, message: str) -> None:
    git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--no-verify", "-m", message)


def apply_fault(shape: Shape, project: Path, fault: str) -> None:
    if fault == "incident":
        path = project / shape.settings_file
        text = path.read_text()
        changed = re.sub(r"\benv_file=\"\.env\",?[ \t]*", "", text)
        if changed == text:
            raise AssertionError(f'no env_file=".env" in {path}')
        path.write_text(changed)
    elif fault == "ignored-import":
        (project / shape.local_module).write_text('"""A developer\'s local helper."""\n')
        with (project / ".gitignore").open("a") as out:
            out.write(f"/{shape.local_module}\n")
        path = project / shape.worker_file
        text = path.read_text()
        anchor = "from __future__ import annotations\n"
        if anchor not in text:
            raise AssertionError(f"no {anchor.strip()!r} in {path}")
        path.write_text(text.replace(anchor, anchor + shape.import_line + "\n", 1))
    elif fault != "none":
        raise ValueError(f"unknown fault {fault!r}; expected one of {FAULTS}")


def prepare(shape: Shape, dest: Path, fault: str = "none") -> Path:
    """Copy, init, commit, apply the fault; return the project dir to run."""
    project = copy_app(shape, dest)
    if shape.configured:
        commit_all(dest, f"{shape.name} with its own [tool.staging]")
    else:
        init(project)
        commit_all(dest, f"{shape.name} with staging init's section")
    apply_fault(shape, project, fault)
    return project
