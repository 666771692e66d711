"""Diagnoses from poller and trigger results (the runner's view of phases 6 and 7)."""

from __future__ import annotations

from pathlib import Path

from staging.result import FailureClass
from staging.temporal.failures import RootCause, WorkflowOutcome
from staging.temporal.pollers import PollerResult
from staging.temporal.trigger import TriggerResult
from staging.temporal.watch import StuckActivity

FIXTURES = Path(__file__).parent / "fixtures"


def test_ready_pollers_have_no_diagnosis() -> None:
    result = PollerResult(ready=True, reason="polling", task_queue="everflow", pollers=("w@h",))

    assert result
    assert result.diagnosis() is None


def test_worker_that_exited_on_the_sandbox_is_worker_sandbox() -> None:
    result = PollerResult(ready=False, reason="exited", task_queue="everflow", waited=1.0)
    log = (FIXTURES / "structlog_import.output.txt").read_text()

    diagnosis = result.diagnosis(log, returncode=1)

    assert not result
    assert diagnosis is not None
    assert diagnosis.failure_class is FailureClass.WORKER_SANDBOX
    assert "structlog" in diagnosis.hint


def test_worker_that_exited_otherwise_is_worker_crashed_with_its_tail() -> None:
    result = PollerResult(ready=False, reason="exited", task_queue="everflow", waited=1.0)
    log = (FIXTURES / "module_not_found.output.txt").read_text()

    diagnosis = result.diagnosis(log, returncode=1)

    assert diagnosis is not None
    assert diagnosis.failure_class is FailureClass.WORKER_CRASHED
    assert "exit code 1" in diagnosis.cause
    assert any("ModuleNotFoundError" in line for line in diagnosis.evidence)


def test_worker_polling_another_queue_is_named() -> None:
    result = PollerResult(
        ready=False,
        reason="timeout",
        task_queue="everflow",
        queues_with_pollers=("everflow-v2",),
        waited=30.0,
    )

    diagnosis = result.diagnosis("worker started\n", redact=str.upper)

    assert diagnosis is not None
    assert diagnosis.failure_class is FailureClass.WORKER_NOT_POLLING
    assert "'everflow'" in diagnosis.cause and "'everflow-v2'" in diagnosis.cause
    assert diagnosis.evidence == ("WORKER STARTED",)


def test_trigger_timeout_and_stuck_diagnoses() -> None:
    timeout = TriggerResult(
        status="timeout", workflow_id="e-1", run_id="r", workflow_type="Everflow", duration=120
    )
    stuck = TriggerResult(
        status="stuck",
        workflow_id="e-1",
        run_id="r",
        workflow_type="Everflow",
        duration=4,
        stuck=StuckActivity(
            workflow_id="e-1",
            run_id="r",
            workflow_type="Everflow",
            activity_type="load_rows",
            activity_id="1",
            attempts=3,
            cause=RootCause(message="relation missing", type="UndefinedTable"),
        ),
    )

    timeout_diagnosis = timeout.diagnosis()
    stuck_diagnosis = stuck.diagnosis()

    assert timeout_diagnosis is not None and stuck_diagnosis is not None
    assert timeout_diagnosis.failure_class is FailureClass.PIPELINE_TIMEOUT
    assert stuck_diagnosis.failure_class is FailureClass.PIPELINE_STUCK_RETRYING
    assert stuck.root_cause is not None and stuck.root_cause.message == "relation missing"
    assert stuck.to_dict()["stuck"]["attempts"] == 3


def test_trigger_failure_uses_the_workflow_root_cause() -> None:
    outcome = WorkflowOutcome(
        workflow_id="e-1",
        run_id="r",
        workflow_type="Everflow",
        task_queue="everflow",
        status="failed",
        root_cause=RootCause(message="bad row 7", type="ValueError", activity_type="transform"),
    )
    failed = TriggerResult(
        status="failed",
        workflow_id="e-1",
        run_id="r",
        workflow_type="Everflow",
        duration=1,
        outcome=outcome,
    )

    diagnosis = failed.diagnosis()

    assert not failed.passed
    assert diagnosis is not None
    assert diagnosis.failure_class is FailureClass.PIPELINE_FAILED
    assert "bad row 7" in diagnosis.cause and "transform" in diagnosis.cause
