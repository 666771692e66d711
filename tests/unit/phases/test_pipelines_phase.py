"""The pipelines phase alone: triggers and workers faked, Temporal's answers faked.

Each way a pipeline ends has one test: passed, trigger failed, a workflow failed, stuck
retrying, timeout, the worker crashed, a service lost; and fire-and-forget triggers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import staging.phases.pipelines as pipelines_module
from staging.phases.pipelines import pipelines_phase
from staging.result import FailureClass, Status
from staging.runner import run_phase
from staging.temporal.failures import RootCause
from staging.temporal.trigger import TriggerResult
from staging.temporal.watch import StuckActivity
from tests.unit.phases.fakes import WORKER, FakeProcess, FakeRun, FakeTemporal, Script, fake_run
from tests.unit.phases.fakes import outcome as workflow


@pytest.fixture
def temporal(monkeypatch: pytest.MonkeyPatch) -> FakeTemporal:
    return FakeTemporal(monkeypatch)


def run(tmp_path: Path, *pipelines: dict[str, Any], **scripts: Script) -> FakeRun:
    table = {"worker": WORKER, "pipelines": list(pipelines)}
    ctx = fake_run(tmp_path, table, scripts={k.replace("_", "-"): v for k, v in scripts.items()})
    worker = FakeProcess("worker", ["python"], Script(None), ctx.logs_dir)
    ctx.workers, ctx.worker = [worker], worker
    return ctx


# A bounded timeout: a broken phase fails its test instead of hanging it.
LOAD = {"name": "load", "command": ["python", "-m", "app.load"], "timeout": 5}


def test_a_trigger_that_exits_zero_passes(tmp_path: Path, temporal: FakeTemporal) -> None:
    temporal.outcomes = [workflow("wf-1")]
    ctx = run(tmp_path, LOAD, pipeline_load=Script(0, "started wf-1"))
    result = pipelines_phase(ctx)
    assert result.status is Status.PASSED, result.diagnosis
    record = ctx.pipelines[0]
    assert (record.status, record.exit_code) == ("passed", 0)
    assert [w["workflow_id"] for w in record.workflows] == ["wf-1"]
    assert ctx.reaped == [ctx.spawned[0]]


def test_workflows_seen_by_one_pipeline_are_not_the_next_ones(
    tmp_path: Path, temporal: FakeTemporal
) -> None:
    temporal.outcomes = [workflow("wf-1")]
    report = {"name": "report", "command": ["python", "-m", "app.report"]}
    ctx = run(tmp_path, LOAD, report)
    assert pipelines_phase(ctx).status is Status.PASSED
    assert [len(r.workflows) for r in ctx.pipelines] == [1, 0]


def test_a_trigger_that_fails_is_pipeline_failed(tmp_path: Path, temporal: FakeTemporal) -> None:
    output = "Traceback (most recent call last):\n  File 'load.py'\nKeyError: 'region'"
    ctx = run(tmp_path, LOAD, pipeline_load=Script(2, output))
    result = pipelines_phase(ctx)
    assert result.status is Status.FAILED and result.diagnosis is not None
    assert result.diagnosis.failure_class is FailureClass.PIPELINE_FAILED
    assert "exited with code 2" in result.diagnosis.cause
    assert ctx.pipelines[0].status == "failed" and ctx.pipelines[0].exit_code == 2


def test_a_failed_workflow_is_reported_with_its_root_cause(
    tmp_path: Path, temporal: FakeTemporal
) -> None:
    cause = RootCause("division by zero", "ZeroDivisionError", activity_type="convert")
    temporal.outcomes = [workflow("wf-1", "failed", root_cause=cause)]
    result = pipelines_phase(run(tmp_path, LOAD))
    assert result.diagnosis is not None
    assert result.diagnosis.cause.startswith("pipeline 'load': ")
    assert "division by zero" in result.diagnosis.cause


def stuck_activity() -> StuckActivity:
    cause = RootCause('password authentication failed for user "app"', "OperationalError")
    return StuckActivity("wf-1", "run-1", "Load", "fetch", "1", 4, cause)


def test_an_activity_stuck_retrying_ends_the_wait_at_once(
    tmp_path: Path, temporal: FakeTemporal
) -> None:
    temporal.stuck = stuck_activity()
    ctx = run(tmp_path, LOAD, pipeline_load=Script(None))
    result = pipelines_phase(ctx)
    assert result.diagnosis is not None
    assert result.diagnosis.failure_class in (
        FailureClass.PIPELINE_STUCK_RETRYING,
        FailureClass.DB_AUTH_FAILED,
    )
    assert "pipeline 'load'" in result.diagnosis.cause
    assert ctx.spawned[0].stops == 1  # the trigger was stopped, then reaped
    assert ctx.reaped == [ctx.spawned[0]]


def test_a_pipeline_past_its_timeout_is_pipeline_timeout(
    tmp_path: Path, temporal: FakeTemporal
) -> None:
    temporal.outcomes = [workflow("wf-slow", "running")]
    ctx = run(tmp_path, {**LOAD, "timeout": 0.05}, pipeline_load=Script(None))
    result = pipelines_phase(ctx)
    assert result.diagnosis is not None
    assert result.diagnosis.failure_class is FailureClass.PIPELINE_TIMEOUT
    assert "still running: wf-slow" in result.diagnosis.cause


def test_a_worker_that_dies_mid_pipeline_is_worker_crashed(
    tmp_path: Path, temporal: FakeTemporal
) -> None:
    temporal.pending = ["convert"]
    ctx = run(tmp_path, LOAD, pipeline_load=Script(None))
    temporal.on_scan = lambda: ctx.workers[0].die(-9)
    result = pipelines_phase(ctx)
    assert result.diagnosis is not None
    assert result.diagnosis.failure_class is FailureClass.WORKER_CRASHED
    assert "killed by SIGKILL" in result.diagnosis.cause
    assert "running convert" in result.diagnosis.cause


def test_a_service_lost_mid_pipeline_is_services_lost(
    tmp_path: Path, temporal: FakeTemporal
) -> None:
    ctx = run(tmp_path, LOAD, pipeline_load=Script(None))
    ctx.env.kill("postgres")
    result = run_phase(ctx, "pipelines", pipelines_phase)
    assert result.status is Status.ABORTED and result.diagnosis is not None
    assert result.diagnosis.failure_class is FailureClass.SERVICES_LOST
    assert "postgres" in result.diagnosis.cause
    assert ctx.spawned[0].stops == 1  # the trigger did not outlive the phase


def test_fire_and_forget_waits_for_the_workflows_it_started(
    tmp_path: Path, temporal: FakeTemporal
) -> None:
    temporal.outcomes = [workflow("wf-1", "running")]
    temporal.on_scan = lambda: setattr(temporal, "outcomes", [workflow("wf-1")])
    ctx = run(tmp_path, LOAD, pipeline_load=Script(0))
    result = pipelines_phase(ctx)
    assert result.status is Status.PASSED, result.diagnosis
    assert temporal.scans >= 1
    assert ctx.pipelines[0].workflows[0]["status"] == "completed"


def test_a_workflow_trigger_reports_the_harness_verdict(
    tmp_path: Path, temporal: FakeTemporal, monkeypatch: pytest.MonkeyPatch
) -> None:
    stuck = stuck_activity()
    asked: dict[str, Any] = {}

    async def start_and_wait(_client: object, workflow_type: str, args: object, **kw: Any) -> Any:
        asked.update(kw, workflow=workflow_type)
        return TriggerResult(
            "terminated", kw["workflow_id"], "run-1", workflow_type, 0.1, stuck=stuck
        )

    monkeypatch.setattr(pipelines_module, "start_and_wait", start_and_wait)
    ctx = run(tmp_path, {"name": "nightly", "workflow": "Nightly"})
    result = pipelines_phase(ctx)
    assert asked["workflow"] == "Nightly" and asked["task_queue"] == "q"
    assert asked["workflow_id"] == "staging-nightly-r-test"
    assert result.diagnosis is not None and "pipeline 'nightly'" in result.diagnosis.cause
    assert "fetch" in result.diagnosis.cause  # the stuck activity, not the termination


def test_no_pipelines_is_skipped(tmp_path: Path) -> None:
    assert pipelines_phase(run(tmp_path)).status is Status.SKIPPED
