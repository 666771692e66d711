"""Worker readiness: ready when Temporal lists a workflow poller on the task queue.

A running process proves nothing: the worker may poll another queue, or be stuck before
`Worker.run()`. `DescribeTaskQueue` shows who polls, so it is the readiness check; the
worker process's liveness (`alive()`) ends the wait early when it exits.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError

from staging.evidence import build_evidence, headline_for_cause
from staging.result import Diagnosis, FailureClass
from staging.temporal.sandbox import parse_sandbox_error
from staging.traps import find_trap

_RPC_TIMEOUT = timedelta(seconds=5)
_ELSEWHERE_EVERY = 0.5  # how often other candidate queues are checked while waiting
_ELSEWHERE_GRACE = 2.0  # how long a worker may poll only another queue before we give up


def _identity(text: str) -> str:
    return text


@dataclass(frozen=True)
class PollerResult:
    ready: bool
    reason: Literal["polling", "exited", "timeout", "elsewhere"]
    task_queue: str
    pollers: tuple[str, ...] = ()  # worker identities polling `task_queue`
    queues_with_pollers: tuple[str, ...] = ()  # candidate queues that do have pollers
    waited: float = 0.0
    last_error: str | None = None  # the last failed DescribeTaskQueue, if any

    def __bool__(self) -> bool:
        return self.ready

    def observed(self) -> str:
        if self.ready:
            return f"{', '.join(self.pollers)} polling task queue {self.task_queue!r}"
        if self.reason == "exited":
            return f"the worker process exited after {self.waited:.1f}s without polling"
        text = f"no workflow poller on task queue {self.task_queue!r} after {self.waited:.1f}s"
        if self.queues_with_pollers:
            polled = ", ".join(repr(q) for q in self.queues_with_pollers)
            text += f"; the worker polls {polled}"
        if self.last_error:
            text += f" (last DescribeTaskQueue error: {self.last_error})"
        return text

    def diagnosis(
        self,
        worker_output: str = "",
        *,
        returncode: int | None = None,
        redact: Callable[[str], str] = _identity,
        root: str = "",
    ) -> Diagnosis | None:
        """`worker.sandbox` / `worker.crashed` / `worker.not_polling`; None when ready.

        `worker_output` is the worker's captured stdout+stderr (its last exception, or its
        tail, is evidence); `root` (the workspace) is stripped from the app's file names.
        """
        if self.ready:
            return None
        tail = tuple(redact(line) for line in worker_output.strip().splitlines()[-20:])
        if self.reason == "exited":
            sandbox = parse_sandbox_error(worker_output)
            if sandbox is not None:
                return sandbox.diagnosis(redact=redact, root=root)
            code = f" with exit code {returncode}" if returncode is not None else ""
            cause = f"the worker exited{code} before polling task queue {self.task_queue!r}"
            cause += headline_for_cause(worker_output)
            trap = find_trap(worker_output)
            return Diagnosis(
                failure_class=FailureClass.WORKER_CRASHED,
                cause=redact(f"{cause}; {trap.cause}" if trap else cause),
                hint=trap.hint
                if trap
                else "run the worker command locally and fix the error at the end of its output",
                evidence=tuple(redact(ln) for ln in build_evidence(worker_output, root=root)),
            )
        hint = (
            f"the worker must poll task queue {self.task_queue!r}: set the worker's "
            f"task_queue to it, or set [tool.staging.worker] task_queue to the queue it polls"
        )
        if not self.queues_with_pollers:
            hint += "; if the worker never reaches Worker.run(), look at its output below"
        return Diagnosis(
            failure_class=FailureClass.WORKER_NOT_POLLING,
            cause=f"the worker runs but {self.observed()}",
            hint=hint,
            evidence=tail,
        )


async def task_queue_pollers(client: Client, task_queue: str) -> tuple[str, ...]:
    """Identities of the workers polling `task_queue` for workflow tasks."""
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    response = await client.workflow_service.describe_task_queue(request, timeout=_RPC_TIMEOUT)
    return tuple(p.identity or "a worker" for p in response.pollers)


async def _polled(client: Client, candidates: Sequence[str]) -> tuple[str, ...]:
    polled: list[str] = []
    for queue in dict.fromkeys(candidates):
        try:
            if await task_queue_pollers(client, queue):
                polled.append(queue)
        except RPCError:
            continue
    return tuple(polled)


async def wait_for_poller(
    client: Client,
    task_queue: str,
    *,
    timeout: float,
    alive: Callable[[], bool],
    interval: float = 0.1,
    candidates: Sequence[str] | Callable[[], Sequence[str]] = (),
) -> PollerResult:
    """Wait until a workflow poller shows up on `task_queue`, the worker exits, or time runs out.

    Temporal has no "list task queues" API, so on timeout only the `candidates` (queue
    names the caller suspects, e.g. other pipelines' queues or the app's settings) are
    checked for pollers, to say which queue the worker polls instead. A callable is asked
    only then, so it can read what the worker printed meanwhile.
    """
    start = time.monotonic()
    deadline = start + timeout
    last_error: str | None = None
    next_elsewhere_check = start + _ELSEWHERE_EVERY
    elsewhere_since: float | None = None
    while True:
        # Liveness first: the server keeps listing a dead worker's poller for a while.
        if not alive():
            return PollerResult(
                ready=False,
                reason="exited",
                task_queue=task_queue,
                waited=time.monotonic() - start,
                last_error=last_error,
            )
        try:
            pollers = await task_queue_pollers(client, task_queue)
        except RPCError as exc:
            last_error = f"{exc.status.name}: {exc.message}"
            pollers = ()
        if pollers:
            return PollerResult(
                ready=True,
                reason="polling",
                task_queue=task_queue,
                pollers=pollers,
                waited=time.monotonic() - start,
            )
        now = time.monotonic()
        if now >= next_elsewhere_check and now < deadline:
            # Fail fast: a worker that polls another queue will not start polling ours.
            # A short grace covers workers that start several Worker instances in turn.
            next_elsewhere_check = now + _ELSEWHERE_EVERY
            names = candidates() if callable(candidates) else candidates
            elsewhere = await _polled(client, [q for q in names if q != task_queue])
            if not elsewhere:
                elsewhere_since = None
            elif elsewhere_since is None:
                elsewhere_since = now
            elif now - elsewhere_since >= _ELSEWHERE_GRACE:
                return PollerResult(
                    ready=False,
                    reason="elsewhere",
                    task_queue=task_queue,
                    queues_with_pollers=elsewhere,
                    waited=now - start,
                    last_error=last_error,
                )
        if time.monotonic() >= deadline:
            names = candidates() if callable(candidates) else candidates
            others = [q for q in names if q != task_queue]
            return PollerResult(
                ready=False,
                reason="timeout",
                task_queue=task_queue,
                queues_with_pollers=await _polled(client, others),
                waited=time.monotonic() - start,
                last_error=last_error,
            )
        await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))
