"""A run's life from the outside: signals, SIGKILL leftovers, --keep-on-failure, bad config.

Runs `python -m staging` as a user would, on the process backend, and looks at what
is left on the machine afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.corpus import materialize
from tests.integration.leftovers import processes_of

pytestmark = [pytest.mark.process, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def staging(*args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    return subprocess.Popen(
        [sys.executable, "-m", "staging", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen[str], what: str) -> None:
    """Poll a condition of the run (not a service); fail if the run ends first."""
    deadline = time.monotonic() + 120
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"the run ended before {what}: {proc.communicate()[0][-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def run_dir(app: Path) -> Path | None:
    runs = app / ".staging" / "runs"
    found = sorted(runs.iterdir()) if runs.is_dir() else []
    return found[0] if found else None


def pipeline_started(app: Path) -> bool:
    d = run_dir(app)
    return d is not None and (d / "logs" / "pipeline-everflow.log").exists()


@pytest.fixture
def slow_app(tmp_path: Path) -> Iterator[Path]:
    yield materialize("slow-but-fine", tmp_path / "app")


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_mid_pipeline_tears_everything_down(
    slow_app: Path, sig: signal.Signals, code: int
) -> None:
    proc = staging("run", "--project", str(slow_app), "--backend", "process")
    wait_for(lambda: pipeline_started(slow_app), proc, "the pipeline started")
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == code, out[-3000:]
    d = run_dir(slow_app)
    assert d is not None
    verdict = json.loads((d / "verdict.json").read_text())
    assert verdict["status"] == "aborted"
    assert verdict["diagnosis"]["class"] == "interrupted"
    assert processes_of(verdict["run_id"]) == []


def test_sigkilled_run_is_swept_by_the_next_run(slow_app: Path, tmp_path: Path) -> None:
    proc = staging("run", "--project", str(slow_app), "--backend", "process")
    wait_for(lambda: pipeline_started(slow_app), proc, "the pipeline started")
    d = run_dir(slow_app)
    assert d is not None
    run_id = d.name
    proc.kill()
    proc.communicate(timeout=30)
    orphans = processes_of(run_id)
    assert orphans, "a SIGKILLed run leaves its worker and services behind"

    # The next run (here a fast red one) sweeps what the dead run left.
    other = materialize("env-file-removed", tmp_path / "other")
    nxt = staging("run", "--project", str(other), "--backend", "process")
    out, _ = nxt.communicate(timeout=180)
    assert nxt.returncode == 1, out[-3000:]
    # (Any run on this machine may be the one that swept them; in a suite it is this one.)
    assert processes_of(run_id) == []


def test_keep_on_failure_then_down(tmp_path: Path) -> None:
    app = materialize("notify-flood", tmp_path / "app")
    proc = staging("run", "--project", str(app), "--backend", "process", "--keep-on-failure")
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 1, out[-3000:]
    assert "notifications.flood" in out
    assert "staging down --project" in out
    up = json.loads((app / ".staging" / "up.json").read_text())
    run_id = up["run_id"]
    try:
        # Attach as a human would: the data the red run wrote is still there.
        with psycopg.connect(up["postgres"]["url"]) as conn:
            row = conn.execute("select count(*) from daily_conversions").fetchone()
            assert row is not None and row[0] > 0
        worker = up["kept"]["worker_pid"]
        assert worker and Path(f"/proc/{worker}").exists()
        assert processes_of(run_id)
    finally:
        down = staging("down", "--project", str(app))
        down_out, _ = down.communicate(timeout=60)
    assert down.returncode == 0, down_out
    assert not (app / ".staging" / "up.json").exists()
    assert processes_of(run_id) == []


def test_bad_config_aborts_with_key_and_file(tmp_path: Path) -> None:
    app = materialize("good", tmp_path / "app", git=False)
    pyproject = app / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("ready_timeout", "ready_timout"))
    proc = staging("run", "--project", str(app), "--backend", "process")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2, out
    assert "config.invalid" in out
    assert "ready_timout" in out and "pyproject.toml" in out
    assert "Hint:" in out


def _trigger_by_workflow_type(app: Path) -> None:
    pyproject = app / "pyproject.toml"
    text = pyproject.read_text()
    command = 'command = ["python", "scripts/run_pipeline.py", "everflow"]'
    assert command in text
    trigger = 'workflow = "PipelineWorkflow"\nargs = ["everflow"]'
    pyproject.write_text(text.replace(command, trigger))


@pytest.mark.parametrize(
    ("case", "code", "klass"),
    [("good", 0, None), ("missing-migration", 1, "pipeline.stuck_retrying")],
)
def test_pipeline_started_by_workflow_type(
    tmp_path: Path, case: str, code: int, klass: str | None
) -> None:
    app = materialize(case, tmp_path / "app", git=False)
    _trigger_by_workflow_type(app)
    proc = staging("run", "--project", str(app), "--backend", "process", "--json")
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == code, out[-3000:]
    verdict = json.loads(out)
    assert (verdict["diagnosis"] or {}).get("class") == klass
    if klass:
        assert "daily_conversions" in verdict["diagnosis"]["cause"]
    assert verdict["pipelines"][0]["workflows"], "the harness-started workflow is inspected"


FIRE_AND_FORGET = """
import asyncio, os, sys, uuid
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from everflow.settings import get_settings
from everflow.workflows import PipelineWorkflow
from temporalio.client import Client


async def main() -> None:
    s = get_settings()
    client = await Client.connect(s.temporal_address, namespace=s.temporal_namespace)
    await client.start_workflow(
        PipelineWorkflow.run, "everflow", id=f"ff-{uuid.uuid4()}", task_queue=s.task_queue
    )


asyncio.run(main())
sys.stdout.flush()
os._exit(0)
"""


@pytest.mark.parametrize(
    ("case", "code", "klass"),
    [("good", 0, None), ("missing-migration", 1, "pipeline.stuck_retrying")],
)
def test_fire_and_forget_trigger_is_judged_by_its_workflows(
    tmp_path: Path, case: str, code: int, klass: str | None
) -> None:
    """A trigger that starts the workflow and exits 0 does not make the pipeline green."""
    app = materialize(case, tmp_path / "app", git=False)
    (app / "scripts" / "start_only.py").write_text(FIRE_AND_FORGET)
    pyproject = app / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("run_pipeline.py", "start_only.py"))
    proc = staging("run", "--project", str(app), "--backend", "process", "--json")
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == code, out[-3000:]
    verdict = json.loads(out)
    assert (verdict["diagnosis"] or {}).get("class") == klass
    statuses = [w["status"] for w in verdict["pipelines"][0]["workflows"]]
    assert statuses == (["completed"] if code == 0 else ["running"]), statuses


@pytest.mark.parametrize(("prestart", "forked"), [("true", True), ("false", False)])
def test_app_commands_fork_from_the_prestarted_interpreter_unless_turned_off(
    tmp_path: Path, prestart: str, forked: bool
) -> None:
    app = materialize("good", tmp_path / "app")
    env = {k: v for k, v in os.environ.items() if k != "CI"} | {"STAGING_PRESTART": prestart}
    command = ["run", "--project", str(app), "--backend", "process", "--json"]
    done = subprocess.run(
        [sys.executable, "-m", "staging", *command],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    verdict = json.loads(done.stdout)
    phases = {p["name"]: p for p in verdict["phases"]}
    assert phases["worker"]["details"]["forked"] is forked
    assert phases["config"]["details"]["sources"]["prestart"] == "env:STAGING_PRESTART"
    logs = Path(verdict["run_dir"]) / "logs"
    assert (logs / "forkserver.log").exists() is forked
    assert processes_of(verdict["run_id"]) == []


def _run_json(app: Path, **env: str) -> tuple[int, dict[str, Any], str]:
    command = ["run", "--project", str(app), "--backend", "process", "--json"]
    done = subprocess.run(
        [sys.executable, "-m", "staging", *command],
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if k != "CI"} | env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    verdict = json.loads(done.stdout) if done.stdout.strip() else {}
    return done.returncode, verdict, done.stderr


@pytest.mark.parametrize("prestart", ["true", "false"])
def test_a_setup_command_that_cannot_start_is_setup_failed(tmp_path: Path, prestart: str) -> None:
    app = materialize("good", tmp_path / "app", git=False)
    pyproject = app / "pyproject.toml"
    migrate = 'command = ["python", "-m", "everflow.migrate"]'
    assert migrate in pyproject.read_text()
    pyproject.write_text(pyproject.read_text().replace(migrate, 'command = ["alembic", "upgrade"]'))
    code, verdict, err = _run_json(app, STAGING_PRESTART=prestart)
    assert code == 1, (verdict.get("diagnosis"), err[-3000:])
    diagnosis = verdict["diagnosis"]
    assert diagnosis["class"] == "setup.failed"
    assert "alembic upgrade" in diagnosis["cause"] and "could not be started" in diagnosis["cause"]
    assert processes_of(verdict["run_id"]) == []


def test_a_worker_command_that_cannot_start_is_worker_crashed(tmp_path: Path) -> None:
    app = materialize("good", tmp_path / "app", git=False)
    pyproject = app / "pyproject.toml"
    worker = 'command = ["python", "-m", "everflow.worker"]'
    assert worker in pyproject.read_text()
    text = pyproject.read_text().replace(worker, 'command = ["./run-worker.sh"]')
    histories = 'histories = ["tests/histories/*.json"]'
    assert histories in text  # replay cannot discover the workflows from a script
    workflows = 'workflows = ["everflow.workflows:PipelineWorkflow"]'
    pyproject.write_text(text.replace(histories, f"{histories}\n{workflows}"))
    (app / "run-worker.sh").write_text("#!/bin/sh\nexec python -m everflow.worker\n")  # not +x
    code, verdict, err = _run_json(app)
    assert code == 1, (verdict.get("diagnosis"), err[-3000:])
    assert verdict["diagnosis"]["class"] == "worker.crashed"
    assert "./run-worker.sh" in verdict["diagnosis"]["cause"]
    assert "Permission denied" in verdict["diagnosis"]["cause"]
    assert processes_of(verdict["run_id"]) == []


def test_a_preload_that_does_not_import_is_config_invalid(tmp_path: Path) -> None:
    app = materialize("good", tmp_path / "app", git=False)
    pyproject = app / "pyproject.toml"
    text = pyproject.read_text()
    preload = 'preload = ["psycopg", "structlog"]'
    assert preload in text
    pyproject.write_text(text.replace(preload, 'preload = ["psycopgg", "structlog"]'))
    code, verdict, err = _run_json(app)
    assert code == 2, (verdict.get("diagnosis"), err[-3000:])
    assert verdict["diagnosis"]["class"] == "config.invalid"
    assert "psycopgg" in verdict["diagnosis"]["cause"]
    assert [p["name"] for p in verdict["phases"]] == ["config"]
    assert processes_of(verdict["run_id"]) == []
