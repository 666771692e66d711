"""Killing the worker replica that runs an activity, once per activity type (`--chaos`).

A thread with its own event loop watches the pending activities of every running
workflow (describe()) while the pipelines phase runs on the main thread. An activity of a
type not yet interrupted that has run for `after` seconds is cut off: its worker (found
by the poller identity `<pid>@<host>` the server records) gets SIGKILL, as the OOM killer
or a lost machine would give it. The killed attempt is then failed by id, which is what
the server does on its own once a heartbeat_timeout (or else the start_to_close_timeout)
expires: without it, a rehearsal of everflow's 60 s timeouts would wait a minute per kill.
With one replica left polling no queue, a replacement is started, as a platform restarts
a crashed machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.api.workflowservice.v1 import ResetStickyTaskQueueRequest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from staging.process import ManagedProcess
from staging.temporal.scope import WHOLE_NAMESPACE, RunScope

_EVERY = 0.03
RUNNING = "ExecutionStatus='Running'"


@dataclass
class Kill:
    activity: str
    workflow_id: str
    attempt: int
    worker: str  # process name
    pid: int
    ran: float  # seconds the attempt had run
    replacement: str | None = None

    def describe(self) -> str:
        text = (
            f"activity {self.activity!r} (workflow {self.workflow_id}, attempt {self.attempt}) "
            f"after {self.ran:.2f}s: SIGKILL to {self.worker} (pid {self.pid})"
        )
        return text + (f", replacement {self.replacement} started" if self.replacement else "")


@dataclass
class Interrupter:
    """Runs on its own thread between `start()` and `stop()`."""

    connect: Callable[[], Awaitable[Client]]  # awaited on the watcher's own loop
    workers: Callable[[], list[ManagedProcess]]
    replace: Callable[[ManagedProcess], ManagedProcess]
    # Takes a worker out of the run's workers before it is killed: a replica dying on
    # purpose is no crash for the pipelines phase watching them.
    forget: Callable[[ManagedProcess], None]
    after: float = 0.4
    scope: RunScope = WHOLE_NAMESPACE  # the run's workflows (a shared namespace has others')
    kills: list[Kill] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)  # activity types seen running
    error: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="interrupter", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception as exc:  # reported, never raised into the pipelines' thread
            self.error = f"{type(exc).__name__}: {exc}"

    async def _main(self) -> None:
        client = await self.connect()
        while not self._stop.is_set():
            with contextlib.suppress(RPCError):
                await self._once(client)
            await asyncio.sleep(_EVERY)

    async def _once(self, client: Client) -> None:
        done = {k.activity for k in self.kills}
        async for execution in client.list_workflows(self.scope.query(RUNNING)):
            desc = await client.get_workflow_handle(
                execution.id, run_id=execution.run_id
            ).describe()
            for pending in desc.raw_description.pending_activities:
                name = pending.activity_type.name
                if pending.state != PendingActivityState.PENDING_ACTIVITY_STATE_STARTED:
                    continue
                self.seen.add(name)
                ran = time.time() - pending.last_started_time.ToDatetime().timestamp()
                if name in done or ran < self.after:
                    continue
                proc = self._owner(pending.last_worker_identity)
                if proc is None:
                    continue
                kill = Kill(name, execution.id, pending.attempt, proc.name, proc.pid, ran)
                self.forget(proc)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
                self.kills.append(kill)
                done.add(name)
                handle = client.get_async_activity_handle(
                    workflow_id=execution.id,
                    run_id=execution.run_id,
                    activity_id=pending.activity_id,
                )
                with contextlib.suppress(RPCError):
                    await handle.fail(
                        ApplicationError(
                            f"staging --chaos killed the worker running this attempt ({proc.name})"
                        )
                    )
                # Its next workflow task would wait 10 s on the dead worker's sticky queue.
                with contextlib.suppress(RPCError):
                    await client.workflow_service.reset_sticky_task_queue(
                        ResetStickyTaskQueueRequest(
                            namespace=client.namespace,
                            execution=WorkflowExecution(
                                workflow_id=execution.id, run_id=execution.run_id
                            ),
                        )
                    )
                if not any(w.alive() for w in self.workers()):
                    kill.replacement = self.replace(proc).name

    def _owner(self, identity: str) -> ManagedProcess | None:
        pid = identity.split("@", 1)[0]
        return next((w for w in self.workers() if str(w.pid) == pid and w.alive()), None)
