"""Pipelines defined as a workflow type + args: the harness starts the workflow and waits.

The wait ends on whichever comes first: the workflow closes, an activity is stuck
retrying the same error (fail fast), or the timeout. A workflow the harness gave up on
is terminated, so no retry loop keeps hammering the staging database afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from temporalio.client import Client, WorkflowFailureError
from temporalio.service import RPCError

from staging.result import Diagnosis, FailureClass
from staging.temporal.failures import RootCause, WorkflowOutcome, workflow_outcome
from staging.temporal.watch import StuckActivity, watch_until

TriggerStatus = Literal[
    "completed", "failed", "timed_out", "terminated", "canceled", "stuck", "timeout"
]


_CLOSED: dict[str, TriggerStatus] = {
    "failed": "failed",
    "timed_out": "timed_out",
    "terminated": "terminated",
    "canceled": "canceled",
}


def _identity(text: str) -> str:
    return text


@dataclass(frozen=True)
class TriggerResult:
    """`timed_out` is the workflow's own timeout; `timeout` is the harness giving up."""

    status: TriggerStatus
    workflow_id: str
    run_id: str
    workflow_type: str
    duration: float
    result: Any = None
    outcome: WorkflowOutcome | None = None  # set when the workflow closed by itself
    stuck: StuckActivity | None = None

    @property
    def passed(self) -> bool:
        return self.status == "completed"

    @property
    def root_cause(self) -> RootCause | None:
        if self.stuck is not None:
            return self.stuck.cause
        return self.outcome.root_cause if self.outcome else None

    def diagnosis(self, redact: Callable[[str], str] = _identity) -> Diagnosis | None:
        if self.passed:
            return None
        if self.stuck is not None:
            return self.stuck.diagnosis(redact)
        if self.status == "timeout":
            return Diagnosis(
                failure_class=FailureClass.PIPELINE_TIMEOUT,
                cause=(
                    f"workflow {self.workflow_type} (id {self.workflow_id}) did not finish "
                    f"within {self.duration:.0f}s and nothing failed; it was terminated"
                ),
                hint="raise the pipeline's timeout, or find what the workflow waits on "
                "(a signal, a timer, an activity no worker polls for)",
            )
        diagnosis = self.outcome.diagnosis(redact) if self.outcome else None
        return diagnosis or Diagnosis(
            failure_class=FailureClass.PIPELINE_FAILED,
            cause=f"workflow {self.workflow_type} (id {self.workflow_id}) {self.status}",
            hint="inspect the workflow's history in the Temporal UI",
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "workflow_id": self.workflow_id,
            "run_id": self.run_id,
            "workflow_type": self.workflow_type,
            "duration": round(self.duration, 3),
            "outcome": self.outcome.to_dict() if self.outcome else None,
            "stuck": self.stuck.to_dict() if self.stuck else None,
        }


async def start_and_wait(
    client: Client,
    workflow: str,
    args: Sequence[Any],
    *,
    task_queue: str,
    workflow_id: str,
    timeout: float,
    stuck_after: int | None = 3,
    poll_interval: float = 0.5,
) -> TriggerResult:
    """Start `workflow` with `args` and wait for it; see the module docstring.

    `stuck_after=None` disables the stuck-retry watch. The watch covers every running
    workflow of the namespace, so child workflows the pipeline starts are watched too.
    """
    started = time.monotonic()
    handle = await client.start_workflow(
        workflow, args=list(args), id=workflow_id, task_queue=task_queue
    )
    run_id = handle.result_run_id or ""
    result_task = asyncio.create_task(handle.result())
    tasks: set[asyncio.Task[Any]] = {result_task}
    watch_task: asyncio.Task[StuckActivity | None] | None = None
    if stuck_after is not None:
        watch_task = asyncio.create_task(
            watch_until(client, result_task.done, stuck_after=stuck_after, interval=poll_interval)
        )
        tasks.add(watch_task)
    try:
        await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task

    def result(status: TriggerStatus, **kwargs: Any) -> TriggerResult:
        return TriggerResult(
            status=status,
            workflow_id=workflow_id,
            run_id=run_id,
            workflow_type=workflow,
            duration=time.monotonic() - started,
            **kwargs,
        )

    if result_task.done() and not result_task.cancelled():
        error = result_task.exception()
        if error is None:
            return result("completed", result=result_task.result())
        if not isinstance(error, WorkflowFailureError):
            raise error
        # The latest run: a continued-as-new pipeline fails in a later run than it started.
        outcome = await workflow_outcome(client, workflow_id)
        return result(_CLOSED.get(outcome.status, "failed"), outcome=outcome)

    stuck: StuckActivity | None = None
    if watch_task is not None and watch_task.done() and not watch_task.cancelled():
        stuck = watch_task.result() if watch_task.exception() is None else None
    with contextlib.suppress(RPCError):  # it may have closed an instant ago
        reason = "staging: stuck retrying" if stuck else f"staging: no result in {timeout:g}s"
        await handle.terminate(reason=reason)
    return result("stuck" if stuck else "timeout", stuck=stuck)
