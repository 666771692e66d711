"""Phase 6: the app's real worker, ready when Temporal shows it polling the task queue."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace

from staging.config.model import WorkerConfig
from staging.context import ConfigDone, RunContext, ServicesDone, WorkspaceDone
from staging.db_errors import is_db_auth_failure
from staging.phases.workspace import check_origins
from staging.preflight import credentials_phrase
from staging.probes.origins import read_origins
from staging.process import ManagedProcess
from staging.result import Diagnosis, FailureClass, PhaseResult
from staging.services.connect import temporal_client
from staging.temporal.pollers import PollerResult, wait_for_poller


def worker_phase(ctx: RunContext) -> PhaseResult:
    """Start every configured worker; ready when each one's task queue has a poller."""
    configs = ctx.need(ConfigDone).loaded.config.workers
    temporal = ctx.need(ServicesDone).environment.temporal
    done = ctx.need(WorkspaceDone)
    replicas = _start_workers(ctx, configs)

    async def wait() -> list[PollerResult]:
        client = await temporal_client(temporal)
        return await asyncio.gather(
            *(
                wait_for_poller(
                    client,
                    cfg.task_queue,
                    timeout=min(cfg.ready_timeout, max(1.0, ctx.remaining())),
                    alive=proc.alive,
                    candidates=lambda: _candidate_queues(ctx),
                )
                for cfg, proc in zip(configs, ctx.workers[: len(configs)], strict=True)
            )
        )

    results = asyncio.run(wait())
    for cfg, proc, result in zip(configs, ctx.workers[: len(configs)], results, strict=True):
        if not result.ready:
            return _not_ready(ctx, cfg, proc, result)
    if any(len(group) > 1 for group in replicas):
        from staging.rollout.replicas import wait_for_replicas

        failed = wait_for_replicas(ctx, configs, replicas)
        if failed is not None:
            return failed
    shadowed = check_origins(ctx, "once the worker polled")
    if shadowed is not None:
        return PhaseResult.failed("worker", shadowed)
    polling = ", ".join(
        f"{cfg.task_queue!r} (pid {proc.pid}"
        + (", forked from the prestarted interpreter)" if proc.forked else ")")
        for cfg, proc in zip(configs, ctx.workers[: len(configs)], strict=True)
    )
    if len(ctx.workers) > len(configs):
        polling += f" · {len(ctx.workers)} worker processes in all (replicas)"
    checked = len(read_origins(done.origins_dir))
    return PhaseResult.passed(
        "worker",
        summary=f"polling task queue {polling} · {checked} app module(s), all from the workspace",
        pid=ctx.workers[0].pid,
        forked=ctx.workers[0].forked,
        app_modules_checked=checked,
        workers=[
            {"name": cfg.name, "task_queue": cfg.task_queue, "pid": proc.pid}
            | ({"replicas": [p.pid for p in group]} if len(group) > 1 else {})
            for cfg, proc, group in zip(configs, ctx.workers, replicas, strict=False)
        ],
    )


def _not_ready(
    ctx: RunContext, cfg: WorkerConfig, worker: ManagedProcess, result: PollerResult
) -> PhaseResult:
    done = ctx.need(WorkspaceDone)
    if not worker.alive():
        worker.wait(timeout=5)
    output = worker.output(2000)
    diagnosis = result.diagnosis(
        output, returncode=worker.returncode, redact=ctx.redactor, root=str(done.workspace.app)
    )
    assert diagnosis is not None
    if len(ctx.workers) > 1:
        diagnosis = replace(diagnosis, cause=f"worker {cfg.name!r}: {diagnosis.cause}")
    if diagnosis.failure_class is FailureClass.WORKER_CRASHED and is_db_auth_failure(output):
        diagnosis = Diagnosis(
            FailureClass.DB_AUTH_FAILED,
            diagnosis.cause + ": Postgres rejected the app's credentials",
            hint=f"check {credentials_phrase(ctx.probe, done.rendered_env)} and how the DSN "
            "is built",
            evidence=diagnosis.evidence,
        )
    return PhaseResult.failed("worker", diagnosis, command=" ".join(cfg.command))


def _start_workers(ctx: RunContext, configs: list[WorkerConfig]) -> list[list[ManagedProcess]]:
    """Every replica of every worker, in `ctx.workers` the moment it runs: teardown stops
    them all, also when a later one cannot start. The first replica of each worker comes
    first and stands for it (readiness, the verdict)."""
    replicas: list[list[ManagedProcess]] = []
    started: list[ManagedProcess] = []
    try:
        for cfg in configs:
            name = "worker" if len(configs) == 1 else f"worker-{_slug(cfg.name)}"
            count = cfg.replicas
            names = [name] if count == 1 else [f"{name}-{i}" for i in range(1, count + 1)]
            group: list[ManagedProcess] = []
            for n in names:
                group.append(ctx.spawn(n, cfg.command, role="worker", cwd=cfg.cwd))
                started.append(group[-1])
            replicas.append(group)
    finally:
        firsts = [group[0] for group in replicas]
        ctx.workers.extend(firsts + [p for p in started if p not in firsts])
        ctx.worker = ctx.workers[0] if ctx.workers else None
    return replicas


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name)


def _candidate_queues(ctx: RunContext) -> list[str]:
    """Queues a misconfigured worker plausibly polls, so the diagnosis can name the one it does.

    Temporal cannot list task queues; these come from the config, the app's resolved
    settings (fields named like a queue) and `task_queue=...` in the worker's own output.
    """
    cfg = ctx.need(ConfigDone).loaded.config
    names = [w.task_queue for w in cfg.workers]
    names += [p.task_queue for p in cfg.pipelines if p.task_queue]
    names += [v for k, v in ctx.need(WorkspaceDone).rendered_env.items() if "QUEUE" in k.upper()]
    names += [row["value"] for row in ctx.provenance if "queue" in row.get("field", "").lower()]
    if ctx.worker is not None:
        names += _QUEUE_IN_OUTPUT.findall(ctx.worker.output(200))
    return [n for n in dict.fromkeys(names) if n and n != "***"]


_QUEUE_IN_OUTPUT = re.compile(r"task[_ ]queue['\"]?\s*[=:]\s*['\"]?([A-Za-z0-9_.-]+)")
