"""The setup phase alone: app commands faked, each exit turned into its failure class."""

from __future__ import annotations

from pathlib import Path

from staging.phases.setup import setup_phase
from staging.result import FailureClass, Status
from tests.unit.phases.fakes import WORKER, Script, fake_run

STEPS = {
    "worker": WORKER,
    "setup": [
        {"name": "migrate", "command": ["python", "-m", "app.migrate"]},
        {"name": "seed", "command": ["python", "-m", "app.seed"]},
    ],
}


def test_every_step_exiting_zero_passes_in_order(tmp_path: Path) -> None:
    ctx = fake_run(tmp_path, STEPS)
    result = setup_phase(ctx)
    assert result.status is Status.PASSED
    assert result.details["steps"] == ["migrate", "seed"]
    assert [p.name for p in ctx.spawned] == ["setup-migrate", "setup-seed"]
    assert ctx.reaped == ctx.spawned


def test_no_steps_is_skipped(tmp_path: Path) -> None:
    assert setup_phase(fake_run(tmp_path)).status is Status.SKIPPED


def test_a_failing_step_is_setup_failed_and_stops_the_rest(tmp_path: Path) -> None:
    output = "Traceback (most recent call last):\n  File 'm.py'\nValueError: no such table: runs"
    ctx = fake_run(tmp_path, STEPS, scripts={"setup-migrate": Script(3, output)})
    result = setup_phase(ctx)
    assert result.status is Status.FAILED and result.diagnosis is not None
    assert result.diagnosis.failure_class is FailureClass.SETUP_FAILED
    assert "'migrate'" in result.diagnosis.cause and "exit code 3" in result.diagnosis.cause
    assert any("no such table" in line for line in result.diagnosis.evidence)
    assert [p.name for p in ctx.spawned] == ["setup-migrate"]  # seed never ran


def test_a_step_that_does_not_finish_is_stopped_and_named(tmp_path: Path) -> None:
    ctx = fake_run(tmp_path, STEPS, scripts={"setup-seed": Script(None, "waiting for a lock")})
    result = setup_phase(ctx)
    assert result.diagnosis is not None
    assert result.diagnosis.failure_class is FailureClass.SETUP_FAILED
    assert "'seed'" in result.diagnosis.cause and "did not finish" in result.diagnosis.cause
    assert ctx.spawned[-1].stops == 1 and ctx.spawned[-1] in ctx.reaped


def test_rejected_credentials_are_db_auth_failed(tmp_path: Path) -> None:
    output = 'psycopg.OperationalError: FATAL:  password authentication failed for user "app"'
    ctx = fake_run(tmp_path, STEPS, scripts={"setup-migrate": Script(1, output)})
    result = setup_phase(ctx)
    assert result.diagnosis is not None
    assert result.diagnosis.failure_class is FailureClass.DB_AUTH_FAILED
