"""The rollout itself: the last green tree's worker runs the pipelines, is stopped
mid-flight as a platform stops it, and this tree's worker must finish every workflow.

Steps (issue 15): the current tree's workers (from the worker phase) step aside; the old
tree's workers start in their own workspace and the pipelines are triggered there; at the
swap point the old workers are frozen (SIGSTOP) so the workflows stay mid-flight; then
`rolling` starts the new workers and stops the old ones one by one, `immediate` stops them
all and then starts the new ones. A run the old worker finished before the freeze (the
example's pipeline is faster than a process reacts) is reset to the workflow task after
its swap point, so the new code continues exactly the history it would have found; so is
a run whose workflow task after the swap point the old worker took and never completed
(see `staging.rollout.history.reset_point`). The stop lines and the reset notes are kept
apart: `log` says how each old worker ended, `resets` which runs were reset and why.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.workflowservice.v1 import (
    ResetStickyTaskQueueRequest,
    ResetWorkflowExecutionRequest,
)
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from staging.config.model import PipelineConfig, RolloutConfig, WorkerConfig
from staging.context import ConfigDone, RunContext, ServicesDone
from staging.process import ManagedProcess
from staging.rollout.history import closed, find_divergence, reset_point, swap_point
from staging.rollout.pollers import wait_for_processes
from staging.rollout.processes import freeze, platform_stop, spawn_in
from staging.temporal.pollers import task_queue_pollers
from staging.temporal.scope import RunScope
from staging.workspace import Workspace

_POLL = 0.2
_FIND_TIMEOUT = 30.0  # for a trigger to start its workflow


class Skip(Exception):
    """The rehearsal cannot happen (the old tree does not start here): a note, not a verdict."""


@dataclass
class InFlight:
    workflow_id: str
    run_id: str
    workflow_type: str = ""
    point: int | None = None  # the swap point's event id, once reached
    reset_to: int | None = None  # the reset event, when the old worker finished the run
    events: list[HistoryEvent] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "workflow_id": self.workflow_id,
            "run_id": self.run_id,
            "workflow_type": self.workflow_type,
            "swap_event": self.point,
            "reset_to_event": self.reset_to,
            "events": len(self.events),
        }


async def _pollers(client: Client, task_queue: str) -> tuple[str, ...]:
    try:
        return await task_queue_pollers(client, task_queue)
    except RPCError:
        return ()


def _default_identities(procs: list[ManagedProcess]) -> set[str]:
    """The SDK's default identity is `<pid>@<hostname>`."""
    host = socket.gethostname()
    return {f"{p.pid}@{host}" for p in procs}


def _names(cfg: WorkerConfig, many: bool, tag: str) -> list[str]:
    base = f"worker-{cfg.name}" if many else "worker"
    if cfg.replicas == 1:
        return [f"{base}-{tag}"]
    return [f"{base}-{tag}-{i}" for i in range(1, cfg.replicas + 1)]


class Rehearsal:
    def __init__(
        self,
        ctx: RunContext,
        cfg: RolloutConfig,
        old: Workspace,
        old_env: dict[str, str],
        pipelines: list[PipelineConfig],
        halfway: int | None,
    ) -> None:
        loaded = ctx.need(ConfigDone).loaded
        self.ctx, self.cfg, self.old, self.old_env = ctx, cfg, old, old_env
        self.scope = RunScope.of_run(loaded.config, ctx.need(ServicesDone).environment.temporal)
        self.pipelines, self.halfway = pipelines, halfway
        self.workers = loaded.config.workers
        self.log: list[str] = []  # one line per old worker stopped
        self.resets: list[str] = []  # one line per run reset past the swap point
        self.old_identities: set[str] = set()  # the old workers' poller identities
        self._let_go: set[str] = set()  # pids of old workers that exited on their SIGTERM
        self.swap_at: float | None = None
        self.swapped_at: float | None = None
        self._triggers: list[ManagedProcess] = []

    # -- processes ---------------------------------------------------------------------

    async def _start_workers(self, client: Client, *, old: bool) -> list[ManagedProcess]:
        """Every worker's replicas, of the old tree or this one; ready when each polls."""
        many = len(self.workers) > 1
        started: list[tuple[WorkerConfig, list[ManagedProcess]]] = []
        # Pollers listed now are other processes' (and stay listed a while after they stop).
        stale = {cfg.task_queue: await _pollers(client, cfg.task_queue) for cfg in self.workers}
        for cfg in self.workers:
            names = _names(cfg, many, "green" if old else "new")
            if old:
                procs = [
                    spawn_in(
                        self.ctx, self.old, self.old_env, n, cfg.command, role="worker", cwd=cfg.cwd
                    )
                    for n in names
                ]
            else:
                procs = [self.ctx.spawn(n, cfg.command, role="worker", cwd=cfg.cwd) for n in names]
            started.append((cfg, procs))
            self.ctx.workers.extend(procs)  # teardown stops them whatever happens
        for cfg, procs in started:
            polling = await wait_for_processes(
                client,
                cfg.task_queue,
                [p.pid for p in procs],
                alive=lambda procs=procs: all(p.alive() for p in procs),  # type: ignore[misc]
                timeout=min(cfg.ready_timeout, max(1.0, self.ctx.remaining())),
                stale=stale[cfg.task_queue],
            )
            if not polling.ready:
                which = "the last green tree's" if old else "this tree's"
                raise Skip(f"{which} worker {cfg.name!r} did not start: {polling.observed()}")
            if old:
                self.old_identities.update(polling.identities)
                self.old_identities.update(_default_identities(procs))
        return [p for _, procs in started for p in procs]

    def _stop(self, procs: list[ManagedProcess]) -> None:
        grace = max((w.stop_grace for w in self.workers), default=5.0)
        lines = platform_stop(self.ctx, procs, grace)
        self.log += lines
        # A worker that exited on its SIGTERM let go of all it had received.
        self._let_go.update(
            str(p.pid) for p, line in zip(procs, lines, strict=True) if "exited" in line
        )
        self.ctx.workers = [w for w in self.ctx.workers if w not in procs]

    # -- the pipelines on the old tree ---------------------------------------------------

    async def _trigger(self, client: Client) -> tuple[set[str], list[ManagedProcess]]:
        before = {e.id async for e in client.list_workflows(self.scope.query())}
        triggers: list[ManagedProcess] = []
        default_queue = self.ctx.need(ConfigDone).loaded.config.worker.task_queue
        for p in self.pipelines:
            if p.workflow is not None:
                await client.start_workflow(
                    p.workflow,
                    args=list(p.args),
                    id=f"staging-rollout-{p.name}-{self.ctx.run_id}",
                    task_queue=p.task_queue or default_queue,
                )
            else:
                assert p.command is not None
                triggers.append(
                    spawn_in(
                        self.ctx,
                        self.old,
                        self.old_env,
                        f"rollout-{p.name}",
                        p.command,
                        role="trigger",
                        cwd=p.cwd,
                    )
                )
        return before, triggers

    async def _find(
        self, client: Client, before: set[str], triggers: list[ManagedProcess]
    ) -> list[InFlight]:
        deadline = time.monotonic() + min(_FIND_TIMEOUT, max(1.0, self.ctx.remaining()))
        while True:
            found = [
                InFlight(e.id, e.run_id, e.workflow_type)
                async for e in client.list_workflows(self.scope.query())
                if e.id not in before
            ]
            if len(found) >= len(self.pipelines):
                return found
            if time.monotonic() >= deadline or (triggers and not any(t.alive() for t in triggers)):
                if found:
                    return found
                out = triggers[0].output(5) if triggers else ""
                raise Skip(f"the last green tree's pipelines started no workflow ({out.strip()})")
            await asyncio.sleep(0.05)

    async def _until_swap_point(self, client: Client, flight: InFlight) -> None:
        handle = client.get_workflow_handle(flight.workflow_id, run_id=flight.run_id)
        async for event in handle.fetch_history_events(wait_new_event=True):
            flight.events.append(event)
            flight.point = swap_point(flight.events, self.cfg.at, self.halfway)
            if flight.point is not None or closed(flight.events):
                return

    # -- the swap --------------------------------------------------------------------------

    async def run(self, client: Client) -> list[InFlight]:
        for proc in list(self.ctx.workers):  # this tree's workers step aside for the old ones
            proc.stop(grace=2)
            self.ctx.reap(proc)
        self.ctx.workers, self.ctx.worker = [], None
        old = await self._start_workers(client, old=True)
        before, triggers = await self._trigger(client)
        self._triggers = triggers
        flights = await self._find(client, before, triggers)
        waits = [asyncio.ensure_future(self._until_swap_point(client, f)) for f in flights]
        timeout = min(max(p.timeout for p in self.pipelines), max(1.0, self.ctx.remaining()))
        # Each workflow mid-flight (issue 15), not just the first: one that reached its swap
        # point while another had not yet is brought back to its point by the reset below.
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.ALL_COMPLETED)
        freeze(old)
        self.swap_at = self.ctx.elapsed()
        for w in waits:
            w.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
        await self._unstick(client, flights)
        await self._swap(client, old)
        self.swapped_at = self.ctx.elapsed()
        await self._reset_past_point(client, flights)
        await self._release_activities(client, flights)
        return flights

    async def _unstick(self, client: Client, flights: list[InFlight]) -> None:
        """Send the next workflow tasks to the shared queue, not the frozen worker's own.

        A worker keeps a workflow cached and the server sends its next task to that
        worker's sticky queue, waiting 10 s for it before falling back. An SDK that shuts
        down cleanly tells the server so; a frozen one cannot.
        """
        for f in flights:
            with contextlib.suppress(RPCError):
                await client.workflow_service.reset_sticky_task_queue(
                    ResetStickyTaskQueueRequest(
                        namespace=client.namespace,
                        execution=WorkflowExecution(workflow_id=f.workflow_id, run_id=f.run_id),
                    )
                )

    async def _swap(self, client: Client, old: list[ManagedProcess]) -> None:
        if self.cfg.strategy == "immediate":
            self._stop(old)
            new = await self._start_workers(client, old=False)
        else:
            new = await self._start_workers(client, old=False)
            for proc in old:
                self._stop([proc])
        self.ctx.worker = new[0]

    def _stopped(self, identity: str) -> bool:
        return identity in self.old_identities

    async def _reset_past_point(self, client: Client, flights: list[InFlight]) -> None:
        """Reset the runs the old workers took past the swap point in a way this tree
        cannot continue faithfully (finished, or a workflow task left unfinished).

        Runs after the old workers are stopped: nothing of theirs can change the history
        any more, and this tree's workers cannot yet have taken the task they left.
        """
        for flight in flights:
            history = await client.get_workflow_handle(
                flight.workflow_id, run_id=flight.run_id
            ).fetch_history()
            flight.events = list(history.events)
            if flight.point is None:
                continue
            target = reset_point(flight.events, flight.point, self._stopped)
            if target is None:
                continue
            if target > flight.events[-1].event_id:
                # The task is still pending on the stopped worker: the server accepts a
                # reset only to an event it has, so wait for the task's timeout.
                await self._until_event(client, flight, target)
                target = reset_point(flight.events, flight.point, self._stopped)
                if target is None or target > flight.events[-1].event_id:
                    continue  # left to the stuck detector, which names the task's worker
            finished = closed(flight.events)
            response = await client.workflow_service.reset_workflow_execution(
                ResetWorkflowExecutionRequest(
                    namespace=client.namespace,
                    workflow_execution=WorkflowExecution(
                        workflow_id=flight.workflow_id, run_id=flight.run_id
                    ),
                    reason=(
                        "staging rollout: the old worker finished before it was stopped"
                        if finished
                        else "staging rollout: the stopped old worker left a workflow task"
                    ),
                    workflow_task_finish_event_id=target,
                    request_id=uuid.uuid4().hex,
                )
            )
            why = (
                "the old worker finished it before the freeze"
                if finished
                else "the old worker took its workflow task after the swap point and was "
                "stopped before completing it (the server would retry it only after the "
                "workflow task timeout, and would not record the retry's failure)"
            )
            self.resets.append(
                f"{flight.workflow_id}: {why}; reset to event {target}, the first workflow "
                f"task after the swap point (event {flight.point}), so this tree replays the "
                "commands the old code issued there"
            )
            flight.run_id, flight.reset_to = response.run_id, target

    async def _until_event(self, client: Client, flight: InFlight, event_id: int) -> None:
        """Follow the history until it has `event_id`, for at most the workflow task timeout
        (plus a margin), the longest the server keeps a started task."""
        first = flight.events[0].workflow_execution_started_event_attributes
        timeout = first.workflow_task_timeout.ToTimedelta().total_seconds() or 10.0
        handle = client.get_workflow_handle(flight.workflow_id, run_id=flight.run_id)

        async def follow() -> None:
            async for event in handle.fetch_history_events(wait_new_event=True, skip_archival=True):
                if event.event_id > flight.events[-1].event_id:
                    flight.events.append(event)
                if event.event_id >= event_id:
                    return

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(follow(), timeout=min(timeout + 5.0, self.ctx.remaining()))

    async def _release_activities(self, client: Client, flights: list[InFlight]) -> None:
        """Fail the activity attempts the frozen old workers were handed but never ran.

        A frozen worker's long polls stay open: the server can hand it an activity after
        the freeze, and the worker, once continued, shuts down without running it (it
        exited on its SIGTERM, so it was running nothing). The server would retry that
        attempt only after its start_to_close_timeout; failing it by id is what the server
        does then (as `--chaos` does for the worker it kills), so the retry goes to this
        tree now. A worker SIGKILLed after its grace really was cut off mid-activity: its
        attempt is left to the timeout, which is what production would wait for.
        """
        for flight in flights:
            if flight.point is None or closed(flight.events):
                continue
            handle = client.get_workflow_handle(flight.workflow_id, run_id=flight.run_id)
            with contextlib.suppress(RPCError):
                desc = await handle.describe()
                for pending in desc.raw_description.pending_activities:
                    if pending.state != PendingActivityState.PENDING_ACTIVITY_STATE_STARTED:
                        continue
                    if pending.last_worker_identity.split("@", 1)[0] not in self._let_go:
                        continue
                    await client.get_async_activity_handle(
                        workflow_id=flight.workflow_id,
                        run_id=flight.run_id,
                        activity_id=pending.activity_id,
                    ).fail(
                        ApplicationError(
                            "staging rollout: handed to the frozen old worker "
                            f"({pending.last_worker_identity}), which stopped without running it"
                        )
                    )
                    self.resets.append(
                        f"{flight.workflow_id}: activity {pending.activity_type.name!r} "
                        f"(attempt {pending.attempt}) was handed to the frozen old worker "
                        f"{pending.last_worker_identity}, which exited without running it; "
                        "failed by id so it is retried now rather than after its "
                        "start_to_close_timeout"
                    )

    def stop_old(self) -> None:
        """The old tree's workers still running (a failure before the swap)."""
        old = [w for w in self.ctx.workers if "-green" in w.name and w.alive()]
        if old:
            self._stop(old)

    def stop_triggers(self) -> None:
        for t in self._triggers:
            if t.alive():
                t.stop(grace=2)
            self.ctx.reap(t)


__all__ = ["InFlight", "Rehearsal", "Skip", "find_divergence"]
