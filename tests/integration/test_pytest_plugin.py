"""staging's pytest plugin in real pytest sessions, on the example app (issue 16).

- a user's pytest suite (everflow's own `tests/test_e2e_staging.py`) uses every fixture
  on each backend, in a separate pytest process that finds the plugin by its entry point;
- a Python check that fails is the run's `check.failed`, naming the test and its message,
  in the verdict, junit.xml and the report;
- a session killed with SIGKILL leaves its services to the next session's sweep;
- with no backend the fixtures skip with the reason, `--staging-require` makes that an
  error, and a broken `[tool.staging]` is an error, never a skip (no service starts).

Cost on this machine (2 loaded cores, process backend): ~20 s for the user suite (its
`staging_run` test is a whole run), ~10 s for the failing check's run.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from staging.commands.run import run_staging
from staging.context import RunOptions
from tests.corpus import materialize
from tests.integration.leftovers import processes_of

pytestmark = pytest.mark.slow

E2E = "tests/test_e2e_staging.py"


def _pytest(app: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGING_PYTEST")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", *args],
        cwd=app,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def _pytest_in(
    where: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """pytest in `where`, with none of the caller's STAGING_* / PYTEST_* settings."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("STAGING_", "PYTEST_"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rsf", *args],
        cwd=where,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _left_running(app: Path) -> list[str]:
    runs = app / ".staging" / "runs"
    return [
        line for run in (runs.iterdir() if runs.is_dir() else ()) for line in processes_of(run.name)
    ]


@pytest.mark.parametrize(
    "backend",
    [
        pytest.param("process", marks=pytest.mark.process),
        pytest.param("docker", marks=pytest.mark.docker),
    ],
)
def test_a_user_suite_uses_every_fixture(backend: str, tmp_path: Path) -> None:
    app = materialize("good", tmp_path / "app")
    done = _pytest(app, E2E, "--staging-backend", backend, "--staging-require")
    shown = done.stdout[-4000:] + done.stderr[-2000:]
    assert done.returncode == 0, shown
    assert "5 passed" in done.stdout, shown
    # The session ran in the app dir (its run dir, with the services' logs) and stopped all.
    runs = sorted((app / ".staging" / "runs").iterdir())
    assert runs, shown
    assert (runs[0] / "logs" / "postgres.log").exists()
    assert _left_running(app) == []


FAILING_CHECK = """
import psycopg


def test_totals_per_currency(staging_services):
    with psycopg.connect(**staging_services.postgres.conninfo()) as conn:
        (total,) = conn.execute("select sum(conversions) from daily_conversions").fetchone()
    assert total == -1, f"conversion total is {total}, the finance export says -1"


def test_fine():
    assert True
"""


@pytest.mark.process
def test_a_failing_python_check_is_check_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = materialize("good", tmp_path / "app")
    (app / "tests" / "staging" / "test_finance.py").write_text(FAILING_CHECK)

    code = run_staging(RunOptions(project=app, overrides={"backend": "process"}))
    console = capsys.readouterr().out

    (run,) = sorted((app / ".staging" / "runs").iterdir())
    verdict = json.loads((run / "verdict.json").read_text())
    diagnosis = verdict["diagnosis"]
    assert code == 1, json.dumps(diagnosis, indent=1) + console[-3000:]
    assert diagnosis["class"] == "check.failed"
    nodeid = "tests/staging/test_finance.py::test_totals_per_currency"
    assert nodeid in diagnosis["cause"]
    assert "the finance export says -1" in diagnosis["cause"]
    assert "check.failed" in console and nodeid in console
    # Every Python check is a check of the verdict, so junit.xml and the report list it.
    checks = {c["check"]: c["ok"] for c in verdict["pipelines"][0]["checks"]}
    assert checks[nodeid] is False
    assert checks["tests/staging/test_finance.py::test_fine"] is True
    assert checks[
        "tests/staging/test_totals.py::test_conversion_totals_per_offer_match_the_fixture"
    ]
    junit = (run / "junit.xml").read_text()
    assert f'name="{nodeid}"' in junit and "the finance export says -1" in junit
    report = (run / "report.md").read_text()
    assert "test_totals_per_currency" in report, report
    assert "6/7 held" in report, report  # 1 SQL check + 6 Python checks
    assert _left_running(app) == []


# A project whose backend cannot run: Docker asked for, the engine's socket absent.
PROJECT = """
[tool.staging]
backend = "docker"
prestart = false

[tool.staging.worker]
command = ["python", "-c", "pass"]
task_queue = "q"
"""


def test_no_backend_skips_with_the_reason_and_require_fails(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(PROJECT)
    (tmp_path / "test_live.py").write_text(
        "def test_db(postgres_url):\n    pass\n\ndef test_tq(staging_task_queue):\n"
        "    assert staging_task_queue.startswith('test-test-tq-')\n"
    )
    env = {"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}
    skipped = _pytest_in(tmp_path, env=env)
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    assert "1 passed, 1 skipped" in skipped.stdout, skipped.stdout
    assert "services.unavailable" in skipped.stdout and "--staging-require" in skipped.stdout

    required = _pytest_in(tmp_path, "--staging-require", env=env)
    assert required.returncode == 1, required.stdout + required.stderr
    assert "1 passed, 1 error" in required.stdout, required.stdout
    assert "services.unavailable" in required.stdout and "Hint:" in required.stdout


def test_a_broken_config_fails_instead_of_skipping(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.staging]\nbackend = 'nope'\n")
    (tmp_path / "test_live.py").write_text("def test_db(staging_services):\n    pass\n")
    done = _pytest_in(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "config.invalid" in done.stdout and "1 error" in done.stdout


HOLD = """
import os


def test_hold(staging_services):
    with open(os.environ["HOLD_READY"], "w") as ready:
        ready.write(staging_services.run_id + "\\n")
    with open(os.environ["HOLD_RELEASE"]) as release:  # blocks: the session is killed here
        release.read()
"""


@pytest.mark.process
def test_a_killed_session_is_swept_by_the_next(tmp_path: Path) -> None:
    app = materialize("good", tmp_path / "app")
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_hold.py").write_text(HOLD)
    ready, release = tmp_path / "ready", tmp_path / "release"
    os.mkfifo(ready)
    os.mkfifo(release)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGING_PYTEST")}
    env.update(HOLD_READY=str(ready), HOLD_RELEASE=str(release))
    args = ["--staging-project", str(app), "--staging-backend", "process", "--staging-require"]
    held = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args, str(suite)],
        cwd=suite,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def unblock_if_it_dies_first() -> None:
        held.wait()
        with contextlib.suppress(OSError):  # ENXIO: nobody is waiting any more
            os.close(os.open(ready, os.O_WRONLY | os.O_NONBLOCK))

    threading.Thread(target=unblock_if_it_dies_first, daemon=True).start()
    try:
        with ready.open() as fh:  # returns once the session's services are up
            run_id = fh.read().strip()
        assert run_id, f"the held session ended first (exit {held.returncode})"
        assert processes_of(run_id), "the session's services should be running"
    finally:
        held.kill()
        held.wait()
    assert processes_of(run_id), "SIGKILL leaves the services behind: the sweep's job"

    (suite / "test_hold.py").write_text("def test_next(staging_services):\n    pass\n")
    done = _pytest_in(suite, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert processes_of(run_id) == []
