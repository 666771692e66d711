"""The failure-chain walker and evidence classifiers, on hand-built and SDK-built protos."""

from __future__ import annotations

import json

from temporalio.api.common.v1 import ActivityType, Payload, WorkflowType
from temporalio.api.enums.v1 import EventType, RetryState, TimeoutType
from temporalio.api.failure.v1 import (
    ActivityFailureInfo,
    ApplicationFailureInfo,
    ChildWorkflowExecutionFailureInfo,
    Failure,
    TimeoutFailureInfo,
)
from temporalio.api.history.v1 import (
    ActivityTaskFailedEventAttributes,
    ActivityTaskScheduledEventAttributes,
    HistoryEvent,
    WorkflowExecutionFailedEventAttributes,
)
from temporalio.converter import DataConverter
from temporalio.exceptions import ActivityError, ApplicationError

from staging.db_errors import DSN_ESCAPING
from staging.redact import Redactor
from staging.result import FailureClass
from staging.temporal.failures import (
    RootCause,
    WorkflowOutcome,
    diagnose_cause,
    failure_chain,
    history_causes,
    root_cause,
)
from staging.temporal.watch import StuckActivity
from tests.unit.test_db_errors import PASSWORD, libpq_error

AUTH = 'connection failed: FATAL:  password authentication failed for user "app"'


def app_failure(
    message: str, type_: str = "OperationalError", *, non_retryable: bool = False
) -> Failure:
    return Failure(
        message=message,
        stack_trace='  File "everflow/activities.py", line 12, in load_rows\n',
        application_failure_info=ApplicationFailureInfo(type=type_, non_retryable=non_retryable),
    )


def activity_failure(name: str, cause: Failure) -> Failure:
    return Failure(
        message="Activity task failed",
        activity_failure_info=ActivityFailureInfo(
            activity_type=ActivityType(name=name),
            activity_id="1",
            retry_state=RetryState.RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED,
        ),
        cause=cause,
    )


def test_root_cause_is_the_innermost_failure_with_the_activity_that_raised_it() -> None:
    failure = activity_failure("load_rows", app_failure(AUTH))

    cause = root_cause(failure)

    assert cause.message == AUTH
    assert cause.type == "OperationalError"
    assert cause.activity_type == "load_rows"
    assert cause.chain == (
        "ActivityError: activity load_rows failed (MAXIMUM_ATTEMPTS_REACHED): Activity task failed",
        f"OperationalError: {AUTH}",
    )
    assert "activities.py" in cause.stack_trace
    assert cause.summary() == f"OperationalError in activity load_rows: {AUTH}"


def test_root_cause_through_a_child_workflow_names_the_deepest_activity() -> None:
    inner = activity_failure("load_rows", app_failure("boom", "ValueError"))
    child = Failure(
        message="Child Workflow execution failed",
        child_workflow_execution_failure_info=ChildWorkflowExecutionFailureInfo(
            workflow_type=WorkflowType(name="LoadDay")
        ),
        cause=inner,
    )
    outer = activity_failure("orchestrate", Failure(message="wrapper", cause=child))

    cause = root_cause(outer)

    assert (cause.message, cause.type, cause.activity_type) == ("boom", "ValueError", "load_rows")
    assert len(cause.chain) == 5
    assert "child workflow LoadDay failed" in cause.chain[2]


def test_single_failure_without_cause_and_explicit_activity_name() -> None:
    cause = root_cause(app_failure("bad row", non_retryable=True), activity_type="transform")

    assert cause.chain == ("OperationalError: bad row",)
    assert cause.activity_type == "transform"
    assert cause.non_retryable


def test_timeout_failure_type_names_the_timeout_kind() -> None:
    timeout = Failure(
        message="activity StartToClose timeout",
        timeout_failure_info=TimeoutFailureInfo(
            timeout_type=TimeoutType.TIMEOUT_TYPE_START_TO_CLOSE
        ),
    )

    cause = root_cause(activity_failure("slow", timeout))

    assert cause.type == "TimeoutError(START_TO_CLOSE)"
    assert cause.activity_type == "slow"


def test_encoded_attributes_message_is_decoded() -> None:
    failure = Failure(
        message="Encoded failure",
        encoded_attributes=Payload(
            metadata={"encoding": b"json/plain"},
            data=json.dumps({"message": AUTH, "stack_trace": ""}).encode(),
        ),
        application_failure_info=ApplicationFailureInfo(type="OperationalError"),
    )

    assert root_cause(failure).message == AUTH


def test_chain_walk_is_bounded() -> None:
    failure = app_failure("innermost")
    for i in range(100):
        failure = Failure(message=f"wrap {i}", cause=failure)

    assert len(failure_chain(failure)) == 32


def test_chain_built_by_the_sdk_failure_converter() -> None:
    """What a worker really sends: the SDK's own encoding of an ActivityError chain."""
    try:
        try:
            raise ApplicationError(AUTH, type="OperationalError")
        except ApplicationError as inner:
            raise ActivityError(
                "Activity task failed",
                scheduled_event_id=5,
                started_event_id=6,
                identity="worker-1",
                activity_type="load_rows",
                activity_id="1",
                retry_state=None,
            ) from inner
    except ActivityError as exc:
        failure = Failure()
        converter = DataConverter.default
        converter.failure_converter.to_failure(exc, converter.payload_converter, failure)

    cause = root_cause(failure)

    assert (cause.message, cause.type, cause.activity_type) == (
        AUTH,
        "OperationalError",
        "load_rows",
    )


def test_history_causes_maps_activity_failures_to_their_scheduled_activity() -> None:
    events = [
        HistoryEvent(
            event_id=5,
            event_type=EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
            activity_task_scheduled_event_attributes=ActivityTaskScheduledEventAttributes(
                activity_id="1", activity_type=ActivityType(name="load_rows")
            ),
        ),
        HistoryEvent(
            event_id=7,
            event_type=EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
            activity_task_failed_event_attributes=ActivityTaskFailedEventAttributes(
                failure=app_failure(AUTH), scheduled_event_id=5
            ),
        ),
        HistoryEvent(
            event_id=11,
            event_type=EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
            workflow_execution_failed_event_attributes=WorkflowExecutionFailedEventAttributes(
                failure=activity_failure("load_rows", app_failure(AUTH))
            ),
        ),
    ]

    closing, activities = history_causes(events)

    assert closing is not None and closing.message == AUTH
    assert closing.activity_type == "load_rows"
    assert [(a.activity_type, a.message) for a in activities] == [("load_rows", AUTH)]


def test_diagnose_cause_prefers_db_auth_and_redacts() -> None:
    cause = root_cause(activity_failure("load_rows", app_failure(f"{AUTH} ({PASSWORD})")))

    diagnosis = diagnose_cause(
        cause, subject="workflow Everflow (id e-1) failed", redact=Redactor([PASSWORD])
    )

    assert diagnosis.failure_class is FailureClass.DB_AUTH_FAILED
    assert "password authentication failed" in diagnosis.cause
    assert all(PASSWORD not in text for text in (diagnosis.cause, *diagnosis.evidence))
    assert "preflight" in diagnosis.hint


def test_diagnose_cause_names_the_activity_and_mentions_escaping() -> None:
    plain = diagnose_cause(
        RootCause(message="division by zero", type="ZeroDivisionError", activity_type="transform"),
        subject="workflow Everflow (id e-1) failed",
    )
    broken = diagnose_cause(
        RootCause(
            message=libpq_error(f"postgresql://app:{PASSWORD}@h:1/app"), type="ProgrammingError"
        ),
        subject="workflow Everflow (id e-1) failed",
    )

    assert plain.failure_class is FailureClass.PIPELINE_FAILED
    assert "transform" in plain.hint
    assert broken.failure_class is FailureClass.PIPELINE_FAILED
    assert broken.hint == DSN_ESCAPING
    assert all("rd% #" not in text for text in (broken.cause, *broken.evidence))


def test_timed_out_workflow_is_diagnosed_by_its_failing_activity() -> None:
    outcome = WorkflowOutcome(
        workflow_id="e-1",
        run_id="r",
        workflow_type="Everflow",
        task_queue="everflow",
        status="timed_out",
        root_cause=RootCause(message="workflow execution timed out", type="TimeoutError"),
        activity_failures=(
            RootCause(message=AUTH, type="OperationalError", activity_type="load_rows"),
        ),
    )

    diagnosis = outcome.diagnosis()

    assert outcome.failed
    assert diagnosis is not None
    assert diagnosis.failure_class is FailureClass.DB_AUTH_FAILED
    assert "load_rows" in diagnosis.cause


def test_completed_workflow_has_no_diagnosis() -> None:
    outcome = WorkflowOutcome(
        workflow_id="e-1", run_id="r", workflow_type="Everflow", task_queue="q", status="completed"
    )

    assert not outcome.failed
    assert outcome.diagnosis() is None
    assert outcome.to_dict()["status"] == "completed"


# --- issue 12: runtime sandbox violations, unregistered types, known traps -------------


def _fixture_stack_trace(case: str) -> str:
    """The `stack_trace` a real worker logged for a failed workflow task (see fixtures/)."""
    import re
    from pathlib import Path

    text = (Path(__file__).parent / "fixtures" / f"{case}.output.txt").read_text()
    match = re.search(r'stack_trace: "(.*?)", encoded_attributes', text)
    assert match is not None
    return match.group(1).encode().decode("unicode_escape")


def _stuck_workflow_task(failure: Failure) -> StuckActivity:
    return StuckActivity(
        workflow_id="everflow-1",
        run_id="r1",
        workflow_type="EverflowPipeline",
        activity_type="",
        activity_id="",
        attempts=1,
        cause=root_cause(failure),
        kind="workflow_task",
        task_queue="everflow",
    )


def test_runtime_sandbox_violation_names_the_workflows_file_and_line() -> None:
    failure = Failure(
        message="Cannot access datetime.datetime.now.__call__ from inside a workflow. If this "
        "is code from a module not used in a workflow ..., mark the import as pass through.",
        stack_trace=_fixture_stack_trace("runtime_datetime_now"),
        application_failure_info=ApplicationFailureInfo(type="RestrictedWorkflowAccessError"),
    )

    diagnosis = _stuck_workflow_task(failure).diagnosis()

    assert diagnosis.failure_class is FailureClass.PIPELINE_STUCK_RETRYING
    assert "sandbox blocked datetime.datetime.now at /app/wf_runtime_datetime_now.py:8" in (
        diagnosis.cause
    )
    # The exception line first, then the workflow's own line with its code.
    assert diagnosis.evidence[0].startswith("RestrictedWorkflowAccessError: Cannot access")
    assert diagnosis.evidence[1] == (
        "at /app/wf_runtime_datetime_now.py:8 in run: return str(datetime.datetime.now())"
    )
    assert "workflow.now()" in diagnosis.hint


def test_unregistered_workflow_type_is_named_not_reported_as_retrying() -> None:
    failure = Failure(
        message="Workflow class EverflowPipelineV2 is not registered on this worker, available "
        "workflows: EverflowPipeline, PipelineWorkflow",
        application_failure_info=ApplicationFailureInfo(type="NotFoundError"),
    )

    diagnosis = _stuck_workflow_task(failure).diagnosis()

    assert diagnosis.failure_class is FailureClass.PIPELINE_FAILED
    assert diagnosis.cause.startswith(
        "workflow type EverflowPipelineV2 is not registered on the worker of task queue "
        "'everflow'; registered: EverflowPipeline, PipelineWorkflow"
    )
    assert "keeps retrying" not in diagnosis.cause
    assert "EverflowPipelineV2" in diagnosis.hint and "'everflow'" in diagnosis.hint


def test_unregistered_activity_is_named_with_the_registered_ones() -> None:
    failure = activity_failure(
        "load_rows",
        app_failure(
            "Activity function load_rows for workflow everflow-1 is not registered on this "
            "worker, available activities: notify, transform",
            "NotFoundError",
        ),
    )

    diagnosis = diagnose_cause(root_cause(failure), subject="workflow X failed", task_queue="q")

    assert diagnosis.cause.startswith(
        "activity load_rows is not registered on the worker of task queue 'q'; registered: "
        "notify, transform"
    )


def test_a_known_trap_explains_the_failure_in_the_hint() -> None:
    failure = activity_failure(
        "migrate",
        app_failure("invalid interpolation syntax in '***' at position 18", "ValueError"),
    )

    diagnosis = diagnose_cause(root_cause(failure), subject="workflow X failed")

    assert "configparser" in diagnosis.hint and "%%" in diagnosis.hint
