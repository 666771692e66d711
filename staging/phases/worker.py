"""Phase 6: the app's real worker, ready when Temporal shows it polling the task queue."""

from __future__ import annotations

import asyncio
import re

from temporalio.client import Client

from staging.context import RunContext
from staging.db_errors import is_db_auth_failure
from staging.result import Diagnosis, FailureClass, PhaseResult
from staging.temporal.pollers import PollerResult, wait_for_poller


def worker_phase(ctx: RunContext) -> PhaseResult:
    assert ctx.loaded is not None and ctx.workspace is not None and ctx.environment is not None
    cfg = ctx.loaded.config.worker
    temporal = ctx.environment.temporal
    worker = ctx.spawn("worker", cfg.command, role="worker")
    ctx.worker = worker

    async def wait() -> PollerResult:
        client = await Client.connect(temporal.address, namespace=temporal.namespace)
        return await wait_for_poller(
            client,
            cfg.task_queue,
            timeout=min(cfg.ready_timeout, max(1.0, ctx.remaining())),
            alive=worker.alive,
            candidates=lambda: _candidate_queues(ctx),
        )

    result = asyncio.run(wait())
    if result.ready:
        started = ", forked from the prestarted interpreter" if worker.forked else ""
        return PhaseResult.passed(
            "worker",
            summary=f"polling task queue {cfg.task_queue!r} (pid {worker.pid}{started})",
            pid=worker.pid,
            forked=worker.forked,
        )
    if not worker.alive():
        worker.wait(timeout=5)
    output = worker.output(2000)
    diagnosis = result.diagnosis(output, returncode=worker.returncode, redact=ctx.redactor)
    assert diagnosis is not None
    if diagnosis.failure_class is FailureClass.WORKER_CRASHED and is_db_auth_failure(output):
        diagnosis = Diagnosis(
            FailureClass.DB_AUTH_FAILED,
            diagnosis.cause + ": Postgres rejected the app's credentials",
            hint="check how the settings class reads DB_PASSWORD and how the DSN is built",
            evidence=diagnosis.evidence,
        )
    return PhaseResult.failed("worker", diagnosis, command=" ".join(cfg.command))


def _candidate_queues(ctx: RunContext) -> list[str]:
    """Queues a misconfigured worker plausibly polls, so the diagnosis can name the one it does.

    Temporal cannot list task queues; these come from the config, the app's resolved
    settings (fields named like a queue) and `task_queue=...` in the worker's own output.
    """
    assert ctx.loaded is not None
    cfg = ctx.loaded.config
    names = [cfg.worker.task_queue, *(p.task_queue for p in cfg.pipelines if p.task_queue)]
    names += [v for k, v in ctx.rendered_env.items() if "QUEUE" in k.upper()]
    names += [row["value"] for row in ctx.provenance if "queue" in row.get("field", "").lower()]
    if ctx.worker is not None:
        names += _QUEUE_IN_OUTPUT.findall(ctx.worker.output(200))
    return [n for n in dict.fromkeys(names) if n and n != "***"]


_QUEUE_IN_OUTPUT = re.compile(r"task[_ ]queue['\"]?\s*[=:]\s*['\"]?([A-Za-z0-9_.-]+)")
