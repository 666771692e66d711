"""Root causes of failed workflows: walk a Temporal failure chain to its innermost cause.

A workflow that failed because an activity raised reports `ActivityError: Activity task
failed` on the outside; the useful text (`password authentication failed for user "app"`)
is the innermost `cause`. The chain walkers are pure functions over
`temporalio.api.failure.v1.Failure` protos; `workflow_outcomes` applies them to every
workflow of the throwaway namespace after a pipeline's trigger ended.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from temporalio.api.enums.v1 import RetryState, TimeoutType
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowExecutionStatus

from staging.db_errors import (
    is_db_auth_failure,
    mentions_dsn_escaping,
    scrub_dsn_fragments,
)
from staging.evidence import Frame, frames_in
from staging.result import Diagnosis, FailureClass
from staging.temporal.sandbox import sandbox_hint
from staging.temporal.scope import WHOLE_NAMESPACE, RunScope
from staging.traps import find_trap

# A hand-built or hostile proto could nest causes without end; real chains are short.
_MAX_DEPTH = 32

_KIND = {
    "application_failure_info": "ApplicationError",
    "timeout_failure_info": "TimeoutError",
    "canceled_failure_info": "CancelledError",
    "terminated_failure_info": "TerminatedError",
    "server_failure_info": "ServerError",
    "reset_workflow_failure_info": "ResetWorkflowError",
    "activity_failure_info": "ActivityError",
    "child_workflow_execution_failure_info": "ChildWorkflowError",
    "nexus_operation_execution_failure_info": "NexusOperationError",
    "nexus_handler_failure_info": "NexusHandlerError",
}

FAILED_STATUSES = frozenset({"failed", "timed_out", "terminated", "canceled"})


@dataclass(frozen=True)
class RootCause:
    """The innermost failure of a chain, and where it was raised."""

    message: str
    type: str
    activity_type: str | None = None
    chain: tuple[str, ...] = ()  # outermost first, one "Type: message" line per link
    non_retryable: bool = False
    stack_trace: str = ""

    def summary(self) -> str:
        """One line: a multi-line message (psycopg's SQL excerpt) stays in the evidence."""
        where = f" in activity {self.activity_type}" if self.activity_type else ""
        first = next(iter(self.message.strip().splitlines()), "")
        return f"{self.type}{where}: {first}"

    def text(self) -> str:
        """Everything a classifier may look at: chain, message and stack trace."""
        return "\n".join([*self.chain, self.message, self.stack_trace])

    def to_dict(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "type": self.type,
            "activity_type": self.activity_type,
            "chain": list(self.chain),
            "non_retryable": self.non_retryable,
        }


def failure_chain(failure: Failure) -> list[Failure]:
    """The failure and its causes, outermost first."""
    chain = [failure]
    current = failure
    while current.HasField("cause") and len(chain) < _MAX_DEPTH:
        current = current.cause
        chain.append(current)
    return chain


def failure_message(failure: Failure) -> str:
    """The message, decoding it when a failure converter moved it into encoded attributes."""
    if failure.HasField("encoded_attributes"):
        payload = failure.encoded_attributes
        if payload.metadata.get("encoding", b"") == b"json/plain":
            try:
                decoded = json.loads(payload.data)
            except ValueError:
                decoded = None
            message = decoded.get("message") if isinstance(decoded, dict) else None
            if isinstance(message, str):
                return message
    return failure.message


def failure_type(failure: Failure) -> str:
    """`OperationalError` for an application failure, else the SDK's exception name."""
    which = failure.WhichOneof("failure_info")
    if which == "application_failure_info" and failure.application_failure_info.type:
        return failure.application_failure_info.type
    if which == "timeout_failure_info":
        kind = TimeoutType.Name(failure.timeout_failure_info.timeout_type)
        return f"TimeoutError({kind.removeprefix('TIMEOUT_TYPE_')})"
    return _KIND.get(which or "", "Failure")


def describe_link(failure: Failure) -> str:
    """One line per chain link, naming the activity or child workflow where there is one."""
    which = failure.WhichOneof("failure_info")
    message = failure_message(failure)
    if which == "activity_failure_info":
        info = failure.activity_failure_info
        state = RetryState.Name(info.retry_state).removeprefix("RETRY_STATE_")
        return f"ActivityError: activity {info.activity_type.name} failed ({state}): {message}"
    if which == "child_workflow_execution_failure_info":
        child = failure.child_workflow_execution_failure_info
        return f"ChildWorkflowError: child workflow {child.workflow_type.name} failed: {message}"
    return f"{failure_type(failure)}: {message}"


def root_cause(failure: Failure, *, activity_type: str | None = None) -> RootCause:
    """The innermost failure, with the deepest activity on the way (the one that raised).

    `activity_type` names the activity when the chain does not (an `ActivityTaskFailed`
    event or a pending activity's last failure carries no `ActivityError` wrapper).
    """
    chain = failure_chain(failure)
    for link in chain:
        if link.WhichOneof("failure_info") == "activity_failure_info":
            activity_type = link.activity_failure_info.activity_type.name or activity_type
    inner = chain[-1]
    return RootCause(
        message=failure_message(inner),
        type=failure_type(inner),
        activity_type=activity_type,
        chain=tuple(describe_link(link) for link in chain),
        non_retryable=any(
            link.WhichOneof("failure_info") == "application_failure_info"
            and link.application_failure_info.non_retryable
            for link in chain
        ),
        stack_trace=inner.stack_trace,
    )


# --- classifying evidence ------------------------------------------------------------

_UNREGISTERED = re.compile(
    r"(?P<what>Workflow class|Activity function) (?P<name>\S+)(?: for workflow \S+)? is not "
    r"registered on this worker, (?:available (?:workflows|activities): (?P<known>.*)|no "
    r"available activities)"
)
_SANDBOX_BLOCKED = re.compile(r"Cannot access (?P<name>[\w.]+) from inside a workflow")


def _unregistered(cause: RootCause, subject: str, task_queue: str) -> Diagnosis | None:
    """The worker polls the queue but lacks the type: not a retry worth waiting for."""
    match = _UNREGISTERED.search(cause.message)
    if match is None:
        return None
    kind = "workflow type" if match["what"] == "Workflow class" else "activity"
    queue = f"task queue {task_queue!r}" if task_queue else "the task queue"
    known = (match["known"] or "").strip() or "none"
    where = subject.split(" failed ", 1)[0].removeprefix("the workflow task of ")
    return Diagnosis(
        failure_class=FailureClass.PIPELINE_FAILED,
        cause=f"{kind} {match['name']} is not registered on the worker of {queue}; "
        f"registered: {known} (seen on {where})",
        hint=f"register {match['name']} in the Worker(...) that polls {queue} "
        f"({'workflows' if kind == 'workflow type' else 'activities'}=[...]), or start one of "
        f"the registered types",
        evidence=tuple(line for line in cause.chain if line),
    )


def _runtime_sandbox(cause: RootCause) -> tuple[str, Frame | None] | None:
    """(what the sandbox blocked, the workflow's frame) for a run-time violation."""
    match = _SANDBOX_BLOCKED.search(cause.message)
    if match is None and cause.type != "RestrictedWorkflowAccessError":
        return None
    blocked = match["name"].removesuffix(".__call__") if match else "a restricted call"
    app = [f for f in frames_in(cause.stack_trace) if f.kind == "app"]
    return blocked, (app[-1] if app else None)


def _first_sentence(line: str) -> str:
    # temporalio appends generic passthrough advice that does not fit a call in `run`.
    head, sep, _ = line.partition(" from inside a workflow.")
    return f"{head} from inside a workflow" if sep else line


def _identity(text: str) -> str:
    return text


def diagnose_cause(
    cause: RootCause,
    *,
    subject: str,
    failure_class: FailureClass = FailureClass.PIPELINE_FAILED,
    extra_evidence: Sequence[str] = (),
    redact: Callable[[str], str] = _identity,
    task_queue: str = "",
) -> Diagnosis:
    """A diagnosis for one root cause; `db.auth_failed` wins whenever Postgres said so.

    `subject` says what failed ("workflow EverflowPipeline (id everflow-1) failed"); `redact`
    is the run's `Redactor` (URL fragments of a broken DSN are masked regardless).
    """

    def clean(text: str) -> str:
        return redact(scrub_dsn_fragments(text))

    all_text = "\n".join([cause.text(), *extra_evidence])
    escaping = mentions_dsn_escaping(all_text)
    evidence = tuple(clean(line) for line in (*cause.chain, *extra_evidence) if line)
    unregistered = _unregistered(cause, subject, task_queue)
    if unregistered is not None:
        return unregistered
    sandbox = _runtime_sandbox(cause)
    if sandbox is not None:
        blocked, frame = sandbox
        n = len([line for line in cause.chain if line])
        at = f" at {frame.where()} (in {frame.func})" if frame else ""
        # The exception line, then the workflow's own line, then the rest.
        lead = [_first_sentence(line) for line in evidence[:n]]
        lead += [clean(f"at {frame.render()}")] if frame else []
        return Diagnosis(
            failure_class=failure_class,
            cause=clean(f"{subject}: Temporal's workflow sandbox blocked {blocked}{at}"),
            hint=sandbox_hint(blocked),
            evidence=(*lead, *evidence[n:]),
        )
    trap = find_trap(all_text)
    if trap is not None and not escaping:
        escaping = f"{trap.cause}: {trap.hint}"
    if is_db_auth_failure(all_text):
        hint = (
            "Postgres rejected the app's credentials: check in the settings preflight where "
            "the password field came from (a default '' means the settings loader did not "
            "read what staging delivered)"
        )
        return Diagnosis(
            failure_class=FailureClass.DB_AUTH_FAILED,
            cause=clean(f"{subject}: Postgres rejected the credentials: {cause.summary()}"),
            hint=f"{hint}; {escaping}" if escaping else hint,
            evidence=evidence,
        )
    hint = escaping or (
        f"fix the error raised in activity {cause.activity_type}"
        if cause.activity_type
        else "fix the error at the innermost cause of the failure chain"
    )
    return Diagnosis(
        failure_class=failure_class,
        cause=clean(f"{subject}: {cause.summary()}"),
        hint=hint,
        evidence=evidence,
    )


# --- workflows of a namespace ------------------------------------------------------


@dataclass(frozen=True)
class WorkflowOutcome:
    workflow_id: str
    run_id: str
    workflow_type: str
    task_queue: str
    status: str  # running | completed | failed | timed_out | terminated | canceled | ...
    start_time: datetime | None = None
    close_time: datetime | None = None
    root_cause: RootCause | None = None
    # Terminal activity failures recorded in the history, in event order.
    activity_failures: tuple[RootCause, ...] = field(default=())

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATUSES

    def subject(self) -> str:
        return f"workflow {self.workflow_type} (id {self.workflow_id})"

    def diagnosis(self, redact: Callable[[str], str] = _identity) -> Diagnosis | None:
        if not self.failed:
            return None
        cause = self.root_cause or RootCause(message=self.status, type=self.status)
        if self.status == "timed_out" and self.activity_failures:
            # The workflow timeout is the symptom; the activity that kept failing is the cause.
            cause = self.activity_failures[-1]
        subject = f"{self.subject()} {self.status.replace('_', ' ')}"
        return diagnose_cause(cause, subject=subject, redact=redact, task_queue=self.task_queue)

    def to_dict(self) -> dict[str, Any]:
        return {
            "workflow_id": self.workflow_id,
            "run_id": self.run_id,
            "workflow_type": self.workflow_type,
            "task_queue": self.task_queue,
            "status": self.status,
            "start_time": self.start_time.isoformat() if self.start_time else None,
            "close_time": self.close_time.isoformat() if self.close_time else None,
            "root_cause": self.root_cause.to_dict() if self.root_cause else None,
            "activity_failures": [f.to_dict() for f in self.activity_failures],
        }


def status_name(status: WorkflowExecutionStatus | None) -> str:
    return status.name.lower() if status is not None else "unknown"


def history_causes(events: Sequence[HistoryEvent]) -> tuple[RootCause | None, list[RootCause]]:
    """(the workflow's own closing failure, terminal activity failures) from a history."""
    scheduled: dict[int, str] = {}
    activities: list[RootCause] = []
    closing: RootCause | None = None
    for event in events:
        which = event.WhichOneof("attributes")
        if which == "activity_task_scheduled_event_attributes":
            attrs = event.activity_task_scheduled_event_attributes
            scheduled[event.event_id] = attrs.activity_type.name
        elif which == "activity_task_failed_event_attributes":
            failed = event.activity_task_failed_event_attributes
            name = scheduled.get(failed.scheduled_event_id)
            activities.append(root_cause(failed.failure, activity_type=name))
        elif which == "activity_task_timed_out_event_attributes":
            timed_out = event.activity_task_timed_out_event_attributes
            name = scheduled.get(timed_out.scheduled_event_id)
            activities.append(root_cause(timed_out.failure, activity_type=name))
        elif which == "workflow_execution_failed_event_attributes":
            closing = root_cause(event.workflow_execution_failed_event_attributes.failure)
        elif which == "workflow_execution_timed_out_event_attributes":
            closing = RootCause(message="workflow execution timed out", type="TimeoutError")
        elif which == "workflow_execution_terminated_event_attributes":
            reason = event.workflow_execution_terminated_event_attributes.reason
            closing = RootCause(message=reason or "terminated", type="TerminatedError")
        elif which == "workflow_execution_canceled_event_attributes":
            closing = RootCause(message="workflow execution canceled", type="CancelledError")
    return closing, activities


async def workflow_outcome(
    client: Client, workflow_id: str, run_id: str | None = None
) -> WorkflowOutcome:
    """One workflow's status, and for a failed one its root cause from the history."""
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    # describe() reads the execution itself; visibility (list) can lag a just-closed run.
    desc = await handle.describe()
    status = status_name(desc.status)
    closing: RootCause | None = None
    activities: list[RootCause] = []
    if status in FAILED_STATUSES:
        history = await client.get_workflow_handle(workflow_id, run_id=desc.run_id).fetch_history()
        closing, activities = history_causes(history.events)
    return WorkflowOutcome(
        workflow_id=desc.id,
        run_id=desc.run_id,
        workflow_type=desc.workflow_type,
        task_queue=desc.task_queue,
        status=status,
        start_time=desc.start_time,
        close_time=desc.close_time,
        root_cause=closing,
        activity_failures=tuple(activities),
    )


async def workflow_outcomes(
    client: Client, *, scope: RunScope = WHOLE_NAMESPACE, query: str | None = None
) -> list[WorkflowOutcome]:
    """Every workflow run of `scope` (and matching `query`), oldest first.

    Visibility is eventually consistent: a run started an instant before the call may be
    missing. Callers inspect after the trigger ended, when the pipeline's runs are listed.
    """
    outcomes = [
        await workflow_outcome(client, execution.id, execution.run_id)
        async for execution in client.list_workflows(scope.query(query))
    ]
    return sorted(outcomes, key=lambda o: (o.start_time is None, o.start_time or datetime.min))


def first_failure(outcomes: Sequence[WorkflowOutcome]) -> WorkflowOutcome | None:
    """The earliest failed run: later failures are usually its consequences."""
    return next((o for o in outcomes if o.failed), None)
