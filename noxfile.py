"""Project tasks. `nox -s staging` runs the harness on the bundled example app."""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True

# The interpreter nox itself runs on (Python >= 3.11), so a fresh machine needs no other.
PYTHON = None
EXAMPLE = "examples/everflow"


def _service_env() -> dict[str, str]:
    # Ryuk cannot be pulled in air-gapped CI (staging sweeps its own leftovers), and
    # testcontainers may report the docker bridge as host: keep connections on loopback.
    return {
        "TESTCONTAINERS_RYUK_DISABLED": "true",
        "TC_HOST": os.environ.get("TC_HOST", "127.0.0.1"),
    }


def _install(session: nox.Session, *extras: str) -> None:
    spec = f".[{','.join(extras)}]" if extras else "."
    session.install("-e", spec)
    # The example app's own dependencies (never the app itself: the harness runs it
    # from a workspace copy, and an installed copy would shadow that).
    session.install("-r", f"{EXAMPLE}/requirements.txt")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Unit + integration tests. Docker-backed tests skip without Docker unless CI requires it."""
    _install(session, "test")
    env = _service_env()
    session.run("pytest", *(session.posargs or ["tests"]), env=env)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff (lint + format check) and mypy --strict on staging/."""
    _install(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", "staging")


@nox.session(python=PYTHON)
def staging(session: nox.Session) -> None:
    """Run the staging pipeline: `nox -s staging` (example app) or `-- --project PATH ...`."""
    _install(session)
    args = list(session.posargs)
    if "--project" not in args and not any(a.startswith("--project=") for a in args):
        args = ["--project", EXAMPLE, *args]
    env = _service_env()
    session.run("staging", "run", *args, env=env)


@nox.session(python=PYTHON)
def faults(session: nox.Session) -> None:
    """The fault matrix (tests/faults/, also part of `tests`), then the Reliability table."""
    _install(session, "test")
    env = _service_env()
    session.run("pytest", "-m", "faults", "tests/faults", *session.posargs, env=env)
    session.run("python", "-m", "tests.faults.table", env=env)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Time-to-verdict benchmark; writes benchmarks/results/latest.json."""
    _install(session, "test")
    session.install("psutil")
    env = _service_env()
    session.run("python", "benchmarks/run.py", *session.posargs, env=env)
