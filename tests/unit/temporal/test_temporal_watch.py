"""Stuck-retry judgement over hand-built DescribeWorkflowExecution responses."""

from __future__ import annotations

import pytest
from temporalio.api.common.v1 import ActivityType, WorkflowExecution, WorkflowType
from temporalio.api.failure.v1 import ApplicationFailureInfo, Failure
from temporalio.api.workflow.v1 import PendingActivityInfo, WorkflowExecutionInfo
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionResponse

from staging.result import FailureClass
from staging.temporal.watch import RetryTracker, stuck_activity

AUTH = 'FATAL:  password authentication failed for user "app"'


def described(attempt: int, message: str | None = AUTH) -> DescribeWorkflowExecutionResponse:
    pending = PendingActivityInfo(
        activity_id="1", activity_type=ActivityType(name="load_rows"), attempt=attempt
    )
    if message is not None:
        pending.last_failure.CopyFrom(
            Failure(
                message=message,
                application_failure_info=ApplicationFailureInfo(type="OperationalError"),
            )
        )
    return DescribeWorkflowExecutionResponse(
        workflow_execution_info=WorkflowExecutionInfo(
            execution=WorkflowExecution(workflow_id="everflow-1", run_id="run-1"),
            type=WorkflowType(name="EverflowPipeline"),
        ),
        pending_activities=[pending],
    )


@pytest.mark.parametrize(("attempt", "stuck"), [(1, False), (2, False), (3, False), (4, True)])
def test_three_failures_show_as_attempt_four(attempt: int, stuck: bool) -> None:
    found = stuck_activity(described(attempt), RetryTracker(stuck_after=3))

    assert (found is not None) is stuck


def test_stuck_activity_carries_the_root_cause() -> None:
    found = stuck_activity(described(4), RetryTracker(stuck_after=3))

    assert found is not None
    assert (found.workflow_id, found.run_id, found.workflow_type) == (
        "everflow-1",
        "run-1",
        "EverflowPipeline",
    )
    assert (found.activity_type, found.attempts, found.message) == ("load_rows", 3, AUTH)
    assert found.to_dict()["cause"]["type"] == "OperationalError"


def test_a_first_attempt_in_flight_is_not_a_failure() -> None:
    assert stuck_activity(described(5, message=None), RetryTracker(stuck_after=1)) is None


def test_a_changing_error_restarts_the_count() -> None:
    tracker = RetryTracker(stuck_after=3)
    assert stuck_activity(described(2, "connection refused"), tracker) is None
    assert stuck_activity(described(3, AUTH), tracker) is None  # 1 auth failure seen
    assert stuck_activity(described(4, AUTH), tracker) is None  # 2
    found = stuck_activity(described(5, AUTH), tracker)  # 3

    assert found is not None and found.message == AUTH


def test_repeats_between_polls_count() -> None:
    tracker = RetryTracker(stuck_after=3)
    assert tracker.observe(("w", "r", "1"), 1, AUTH) == 1
    assert tracker.observe(("w", "r", "1"), 1, AUTH) == 1  # same sighting again
    assert tracker.observe(("w", "r", "1"), 4, AUTH) == 4  # missed two polls


def test_thresholds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RetryTracker(stuck_after=0)


def test_stuck_diagnosis_is_db_auth_when_postgres_said_so() -> None:
    found = stuck_activity(described(4), RetryTracker())
    assert found is not None

    diagnosis = found.diagnosis()

    assert diagnosis.failure_class is FailureClass.DB_AUTH_FAILED
    assert "load_rows" in diagnosis.cause and "3 times" in diagnosis.cause


def test_stuck_diagnosis_for_other_errors() -> None:
    found = stuck_activity(
        described(4, "relation daily_conversions does not exist"), RetryTracker()
    )
    assert found is not None

    diagnosis = found.diagnosis()

    assert diagnosis.failure_class is FailureClass.PIPELINE_STUCK_RETRYING
    assert "keeps retrying" in diagnosis.cause
    assert "daily_conversions" in diagnosis.cause
