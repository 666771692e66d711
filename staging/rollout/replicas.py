"""`replicas = N`: N processes of one worker command, ready when each polls (issue 15).

Production runs a worker on several machines; two replicas that share a process-level
resource (a lock file, a port, a fixed worker identity) only collide when both run.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from staging.config.model import WorkerConfig
from staging.context import RunContext, ServicesDone
from staging.evidence import build_evidence
from staging.process import ManagedProcess
from staging.result import Diagnosis, FailureClass, PhaseResult
from staging.rollout.pollers import Polling, wait_for_processes
from staging.services.connect import temporal_client


def wait_for_replicas(
    ctx: RunContext, configs: list[WorkerConfig], replicas: list[list[ManagedProcess]]
) -> PhaseResult | None:
    """None when every replica of every worker polls its queue, else the worker phase's failure."""
    temporal = ctx.need(ServicesDone).environment.temporal
    by_queue: dict[str, list[ManagedProcess]] = defaultdict(list)
    timeout: dict[str, float] = {}
    for cfg, group in zip(configs, replicas, strict=True):
        by_queue[cfg.task_queue].extend(group)
        timeout[cfg.task_queue] = max(timeout.get(cfg.task_queue, 0.0), cfg.ready_timeout)

    async def wait() -> list[Polling]:
        client = await temporal_client(temporal)
        return await asyncio.gather(
            *(
                wait_for_processes(
                    client,
                    queue,
                    [p.pid for p in procs],
                    alive=lambda procs=procs: all(p.alive() for p in procs),  # type: ignore[misc]
                    timeout=min(timeout[queue], max(1.0, ctx.remaining())),
                )
                for queue, procs in by_queue.items()
            )
        )

    for polling in asyncio.run(wait()):
        if not polling.ready:
            return PhaseResult.failed(
                "worker", replica_diagnosis(ctx, polling, by_queue[polling.task_queue])
            )
    return None


def replica_diagnosis(ctx: RunContext, polling: Polling, procs: list[ManagedProcess]) -> Diagnosis:
    root = str(ctx.workspace.app) if ctx.workspace is not None else ""
    dead = next((p for p in procs if not p.alive()), None)
    if dead is not None:
        dead.wait(timeout=5)
        output = dead.output(2000)
        return Diagnosis(
            FailureClass.WORKER_CRASHED,
            f"replica {dead.name!r} of the worker on task queue {polling.task_queue!r} exited "
            f"with code {dead.returncode} while {len(procs)} replicas were starting",
            hint="replicas share the machine here as they share the database in production: "
            f"look for a fixed port, a lock file or a fixed worker identity (logs/{dead.name}.log)",
            evidence=tuple(ctx.redactor.text(line) for line in build_evidence(output, root=root)),
        )
    return Diagnosis(
        FailureClass.WORKER_NOT_POLLING,
        f"expected {len(procs)} worker processes polling task queue {polling.task_queue!r}, "
        f"observed {polling.observed()}",
        hint="each replica needs its own worker identity (the SDK's default, '<pid>@<host>', "
        "is); a fixed `identity=` makes the replicas look like one worker",
    )
