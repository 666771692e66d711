"""Fail fast on a pipeline that keeps retrying: find an activity stuck on the same error.

A Temporal activity retries forever by default, so a wrong password turns into a
pipeline that "runs" until the timeout. While the trigger runs we poll the namespace's
running workflows (`DescribeWorkflowExecution`) and stop as soon as one activity has
failed `stuck_after` times with the same error.

What the server shows, measured against the dev server: after N failed attempts a
pending activity reports `attempt = N + 1` (the retry it waits for or runs) and the
N-th failure as `last_failure`. Only the *last* failure is visible (retries write no
history events), so "the same error" is an approximation: a `RetryTracker` that polls
often enough sees every failure of the default 1 s/2 s/4 s backoff; on its first sight
of an activity it assumes the earlier failures had the same message; when the message
changes between polls it counts from one again.

A workflow task that failed (`RestrictedWorkflowAccessError` at run time, a
nondeterminism error) is code that fails the same way on every retry, so by default one
recorded failure already counts as stuck (`kind="workflow_task"`).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Any, Literal

from temporalio.api.enums.v1 import WorkflowTaskFailedCause
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionResponse
from temporalio.client import Client, WorkflowExecution, WorkflowExecutionDescription
from temporalio.service import RPCError

from staging.errors import ServiceUnavailable
from staging.result import Diagnosis, FailureClass
from staging.services.base import TemporalEndpoint
from staging.services.connect import temporal_client
from staging.temporal.failures import RootCause, diagnose_cause, root_cause
from staging.temporal.scope import WHOLE_NAMESPACE, RunScope

RUNNING = "ExecutionStatus='Running'"
_RPC_TIMEOUT = timedelta(seconds=5)
# Failed workflow tasks caused by the code itself; other causes (an unhandled command,
# a reset) are the server's normal bookkeeping.
_CODE_FAILURES = frozenset(
    {
        WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE,
        WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR,
    }
)


def _identity(text: str) -> str:
    return text


@dataclass(frozen=True)
class StuckActivity:
    workflow_id: str
    run_id: str
    workflow_type: str
    activity_type: str  # "" for a workflow task
    activity_id: str
    attempts: int  # failed attempts so far
    cause: RootCause  # the last failure's root cause
    kind: Literal["activity", "workflow_task"] = "activity"
    task_queue: str = ""  # the workflow's, to name it when a type is not registered

    @property
    def message(self) -> str:
        return self.cause.message

    @property
    def chain(self) -> tuple[str, ...]:
        return self.cause.chain

    def subject(self) -> str:
        what = f"activity {self.activity_type}" if self.kind == "activity" else "the workflow task"
        return (
            f"{what} of workflow {self.workflow_type} (id {self.workflow_id}) failed "
            f"{self.attempts} time{'s' if self.attempts != 1 else ''} and keeps retrying"
        )

    def diagnosis(self, redact: Callable[[str], str] = _identity) -> Diagnosis:
        """`pipeline.stuck_retrying`, or `db.auth_failed` when Postgres rejected a login."""
        return diagnose_cause(
            self.cause,
            subject=self.subject(),
            failure_class=FailureClass.PIPELINE_STUCK_RETRYING,
            redact=redact,
            task_queue=self.task_queue,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "workflow_id": self.workflow_id,
            "run_id": self.run_id,
            "workflow_type": self.workflow_type,
            "activity_type": self.activity_type,
            "activity_id": self.activity_id,
            "attempts": self.attempts,
            "cause": self.cause.to_dict(),
        }


@dataclass
class _Seen:
    message: str
    failures: int
    same: int  # consecutive failures with `message` (a lower bound)


class RetryTracker:
    """Remembers each activity's last failure across polls to count repeats of one error."""

    def __init__(self, stuck_after: int = 3, workflow_task_failures: int = 1) -> None:
        if stuck_after < 1 or workflow_task_failures < 1:
            raise ValueError("stuck thresholds count failures and must be at least 1")
        self.stuck_after = stuck_after
        self.workflow_task_failures = workflow_task_failures
        self._seen: dict[tuple[str, str, str], _Seen] = {}

    def observe(self, key: tuple[str, str, str], failures: int, message: str) -> int:
        """Record a sighting; return how many consecutive failures share `message`."""
        previous = self._seen.get(key)
        if previous is None:
            same = failures  # the earlier failures were not seen: assume the same error
        elif previous.message == message:
            same = previous.same + max(0, failures - previous.failures)
        else:
            same = 1
        self._seen[key] = _Seen(message=message, failures=failures, same=same)
        return same


async def _describe(
    client: Client, execution: WorkflowExecution
) -> WorkflowExecutionDescription | None:
    handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
    try:
        return await handle.describe(rpc_timeout=_RPC_TIMEOUT)
    except RPCError:
        return None  # closed and gone between list and describe


async def _failed_workflow_task(client: Client, workflow_id: str, run_id: str) -> RootCause | None:
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    cause: RootCause | None = None
    # The server records only the first of repeated workflow-task failures; it is the one.
    async for event in handle.fetch_history_events(rpc_timeout=_RPC_TIMEOUT):
        if event.HasField("workflow_task_failed_event_attributes"):
            attrs = event.workflow_task_failed_event_attributes
            if attrs.cause in _CODE_FAILURES and attrs.HasField("failure"):
                cause = root_cause(attrs.failure)
    return cause


def stuck_activity(
    raw: DescribeWorkflowExecutionResponse, tracker: RetryTracker
) -> StuckActivity | None:
    """Judge one described workflow's pending activities (pure: no RPC)."""
    info = raw.workflow_execution_info
    workflow_id, run_id = info.execution.workflow_id, info.execution.run_id
    for pending in raw.pending_activities:
        # attempt counts the retry being waited for: N failures show as attempt N + 1.
        if not pending.HasField("last_failure") or pending.attempt < 2:
            continue
        failures = pending.attempt - 1
        cause = root_cause(pending.last_failure, activity_type=pending.activity_type.name)
        key = (workflow_id, run_id, pending.activity_id)
        if tracker.observe(key, failures, cause.message) >= tracker.stuck_after:
            return StuckActivity(
                workflow_id=workflow_id,
                run_id=run_id,
                workflow_type=info.type.name,
                activity_type=pending.activity_type.name,
                activity_id=pending.activity_id,
                attempts=failures,
                cause=cause,
                task_queue=info.task_queue,
            )
    return None


async def _check(
    client: Client, raw: DescribeWorkflowExecutionResponse, tracker: RetryTracker
) -> StuckActivity | None:
    stuck = stuck_activity(raw, tracker)
    if stuck is not None:
        return stuck
    task = raw.pending_workflow_task
    if raw.HasField("pending_workflow_task") and task.attempt > tracker.workflow_task_failures:
        info = raw.workflow_execution_info
        execution = info.execution
        cause = await _failed_workflow_task(client, execution.workflow_id, execution.run_id)
        if cause is not None:
            return StuckActivity(
                workflow_id=execution.workflow_id,
                run_id=execution.run_id,
                workflow_type=info.type.name,
                activity_type="",
                activity_id="",
                attempts=task.attempt - 1,
                cause=cause,
                kind="workflow_task",
                task_queue=info.task_queue,
            )
    return None


async def find_stuck_activity(
    client: Client,
    *,
    stuck_after: int = 3,
    scope: RunScope = WHOLE_NAMESPACE,
    query: str | None = None,
    tracker: RetryTracker | None = None,
) -> StuckActivity | None:
    """The first running activity of `scope` that failed `stuck_after` times alike.

    `query` is a visibility filter ANDed with `ExecutionStatus='Running'`. Pass the same
    `tracker` on every poll to notice a changing error (its threshold then replaces
    `stuck_after`); without one each call judges from a single sighting. Local activities
    retry inside the worker and are not visible here.
    """
    tracker = tracker or RetryTracker(stuck_after)
    listing = client.list_workflows(scope.query(query, RUNNING), rpc_timeout=_RPC_TIMEOUT)
    async for execution in listing:
        desc = await _describe(client, execution)
        if desc is None:
            continue
        stuck = await _check(client, desc.raw_description, tracker)
        if stuck is not None:
            return stuck
    return None


async def watch_until(
    client: Client,
    done: Callable[[], bool],
    *,
    stuck_after: int = 3,
    interval: float = 0.5,
    scope: RunScope = WHOLE_NAMESPACE,
    query: str | None = None,
) -> StuckActivity | None:
    """Poll until `done()` or a stuck activity turns up; transient RPC errors are retried."""
    tracker = RetryTracker(stuck_after)
    while not done():
        with contextlib.suppress(RPCError):
            stuck = await find_stuck_activity(client, scope=scope, query=query, tracker=tracker)
            if stuck is not None:
                return stuck
        await asyncio.sleep(interval)
    return None


class StuckWatcher:
    """`watch_until` in a background thread with its own event loop, for a sync runner.

    Usage (the runner's trigger loop; `wait` doubles as the poll interval)::

        with StuckWatcher.start(endpoint, scope=scope) as watcher:
            while proc.poll() is None:
                if watcher.wait(0.2):
                    break  # stuck: stop the trigger, report watcher.found
    """

    def __init__(
        self,
        endpoint: TemporalEndpoint,
        stuck_after: int,
        interval: float,
        scope: RunScope,
        query: str | None,
    ) -> None:
        self._endpoint = endpoint
        self._tracker = RetryTracker(stuck_after)
        self._scope = scope
        self._query = query
        self._interval = interval
        self._found: StuckActivity | None = None
        self._last_error: str | None = None
        self._connected = False
        self._started = threading.Event()  # set once connecting succeeded or failed
        self._finished = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="staging-stuck-watch", daemon=True)

    @classmethod
    def start(
        cls,
        target: TemporalEndpoint | str,
        namespace: str = "default",
        *,
        stuck_after: int = 3,
        interval: float = 0.5,
        scope: RunScope = WHOLE_NAMESPACE,
        query: str | None = None,
        connect_timeout: float = 10.0,
    ) -> StuckWatcher:
        """Connect and start polling; raise `ServiceUnavailable` if Temporal does not answer.

        `target` is an endpoint, or a plain `host:port` (then in `namespace`).
        """
        endpoint = TemporalEndpoint.of(target, namespace)
        watcher = cls(endpoint, stuck_after, interval, scope, query)
        watcher._thread.start()
        watcher._started.wait(connect_timeout)
        if not watcher._connected:
            watcher.stop()
            raise ServiceUnavailable(
                "the stuck-retry watcher could not connect to Temporal",
                expected=(
                    f"a Temporal frontend answering at {endpoint.address} "
                    f"(namespace {endpoint.namespace})"
                ),
                observed=watcher._last_error or f"no connection within {connect_timeout:g}s",
                hint="check that the Temporal service is still running (see its log)",
            )
        return watcher

    @property
    def found(self) -> StuckActivity | None:
        return self._found

    @property
    def last_error(self) -> str | None:
        """The last poll error, if polling failed (polling continues)."""
        return self._last_error

    def wait(self, timeout: float) -> StuckActivity | None:
        """Block up to `timeout` seconds for a stuck activity; None if none (yet)."""
        self._finished.wait(timeout)
        return self._found

    def stop(self) -> None:
        """Idempotent; returns once the thread has ended."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def __enter__(self) -> StuckWatcher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception as exc:  # a dead watcher must not kill the run; it reports
            self._last_error = f"{type(exc).__name__}: {exc}"
        finally:
            self._started.set()
            self._finished.set()

    async def _main(self) -> None:
        client = await temporal_client(self._endpoint)
        self._connected = True
        self._started.set()
        while not self._stopping.is_set():
            try:
                found = await find_stuck_activity(
                    client, scope=self._scope, query=self._query, tracker=self._tracker
                )
            except RPCError as exc:
                self._last_error = f"RPCError: {exc}"
                found = None
            if found is not None:
                self._found = found
                return
            await asyncio.get_running_loop().run_in_executor(
                None, self._stopping.wait, self._interval
            )


async def pending_activities(client: Client, *, scope: RunScope = WHOLE_NAMESPACE) -> list[str]:
    """What the scope's running workflows wait on: `Type (workflow id, attempt N)`.

    Used when the worker died mid-pipeline, to name the activities it was running.
    """
    found: list[str] = []
    async for execution in client.list_workflows(scope.query(RUNNING), rpc_timeout=_RPC_TIMEOUT):
        desc = await _describe(client, execution)
        if desc is None:
            continue
        for pending in desc.raw_description.pending_activities:
            found.append(
                f"{pending.activity_type.name} (workflow {execution.id}, attempt {pending.attempt})"
            )
    return found
