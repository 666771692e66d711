"""Phase 7: each pipeline's trigger, watched for stuck retries, then every workflow inspected.

Fail fast: an activity that keeps failing with the same error ends the wait at once
(a wrong password must not cost the whole timeout). Afterwards every workflow the
pipeline started is inspected, and a failed one reports its root cause — the
innermost failure of the chain and the activity that raised it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from typing import Any

from temporalio.client import Client

from staging.config.model import PipelineConfig
from staging.context import PipelineRecord, RunContext
from staging.db_errors import is_db_auth_failure
from staging.evidence import build_evidence, headline_for_cause
from staging.process import ManagedProcess
from staging.result import Diagnosis, FailureClass, PhaseResult
from staging.services.connect import ServiceLost, lost_services, temporal_client
from staging.temporal.failures import WorkflowOutcome, workflow_outcomes
from staging.temporal.trigger import start_and_wait
from staging.temporal.watch import (
    RetryTracker,
    StuckActivity,
    find_stuck_activity,
    pending_activities,
)
from staging.traps import find_trap

_POLL = 0.1
_STUCK_EVERY = 0.5
_GUARD_EVERY = 0.25  # a liveness probe: a poll() or one engine call per service


def pipelines_phase(ctx: RunContext) -> PhaseResult:
    assert ctx.loaded is not None
    wanted = ctx.options.pipelines
    pipelines = [p for p in ctx.loaded.config.pipelines if not wanted or p.name in wanted]
    if not pipelines:
        return PhaseResult.skipped("pipelines", "no [[tool.staging.pipelines]] configured")
    return asyncio.run(_run_all(ctx, pipelines))


async def _run_all(ctx: RunContext, pipelines: list[PipelineConfig]) -> PhaseResult:
    """The pipelines, raced against a guard that ends them as soon as a service is lost.

    A lost service would otherwise show as an RPC that waits out its timeout, or as an
    activity retrying against a dead database: the app's fault, told too late.
    """
    work = asyncio.ensure_future(_run_pipelines(ctx, pipelines))
    guard = asyncio.ensure_future(_guard_services(ctx))
    try:
        await asyncio.wait({work, guard}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (work, guard):
            task.cancel()
        await asyncio.gather(work, guard, return_exceptions=True)  # their cleanups run
    if not guard.cancelled() and guard.exception() is not None:
        raise guard.exception()  # type: ignore[misc]
    return work.result()


async def _guard_services(ctx: RunContext) -> None:
    assert ctx.environment is not None
    while True:
        lost = await asyncio.to_thread(lost_services, ctx.environment)
        if lost:
            raise ServiceLost(*lost[0])
        await asyncio.sleep(_GUARD_EVERY)


async def _run_pipelines(ctx: RunContext, pipelines: list[PipelineConfig]) -> PhaseResult:
    assert ctx.environment is not None
    temporal = ctx.environment.temporal
    client = await temporal_client(temporal)
    seen: set[str] = set()
    for pipeline in pipelines:
        record = PipelineRecord(name=pipeline.name)
        ctx.pipelines.append(record)
        began = time.monotonic()
        before = ctx.captures.count() if ctx.captures else 0
        diagnosis = await _run_one(ctx, client, pipeline, record, seen)
        record.duration = time.monotonic() - began
        record.notifications = (ctx.captures.count() if ctx.captures else 0) - before
        record.status = "failed" if diagnosis else "passed"
        if diagnosis is not None:
            return PhaseResult.failed(
                "pipelines", diagnosis, pipelines=[_summary(r) for r in ctx.pipelines]
            )
    names = ", ".join(f"{r.name} ({r.duration:.1f}s)" for r in ctx.pipelines)
    return PhaseResult.passed(
        "pipelines", summary=names, pipelines=[_summary(r) for r in ctx.pipelines]
    )


def _summary(record: PipelineRecord) -> dict[str, Any]:
    return {
        "name": record.name,
        "status": record.status,
        "duration": round(record.duration, 3),
        "exit_code": record.exit_code,
        "notifications": record.notifications,
        "workflows": record.workflows,
    }


async def _run_one(
    ctx: RunContext,
    client: Client,
    pipeline: PipelineConfig,
    record: PipelineRecord,
    seen: set[str],
) -> Diagnosis | None:
    assert ctx.loaded is not None and ctx.workspace is not None
    timeout = min(pipeline.timeout, max(1.0, ctx.remaining()))
    if pipeline.workflow is not None:
        task_queue = pipeline.task_queue or ctx.loaded.config.worker.task_queue
        trigger = asyncio.ensure_future(
            start_and_wait(
                client,
                pipeline.workflow,
                pipeline.args,
                task_queue=task_queue,
                workflow_id=f"staging-{pipeline.name}-{ctx.run_id}",
                timeout=timeout,
            )
        )
        proc = None
    else:
        assert pipeline.command is not None
        proc = ctx.spawn(
            f"pipeline-{pipeline.name}", pipeline.command, role="trigger", cwd=pipeline.cwd
        )
        trigger = None

    deadline = time.monotonic() + timeout
    next_stuck_check = time.monotonic() + _STUCK_EVERY
    stuck: StuckActivity | None = None
    tracker = RetryTracker(stuck_after=pipeline.stuck_after)
    timed_out = False
    worker_died = False
    try:
        while True:
            if _dead_worker(ctx) is not None:
                worker_died = True
                break
            if proc is not None and not proc.alive():
                break
            if trigger is not None and trigger.done():
                break
            now = time.monotonic()
            if now >= deadline:
                timed_out = True
                break
            if now >= next_stuck_check:
                stuck = await find_stuck_activity(client, tracker=tracker)
                if stuck is not None:
                    break
                next_stuck_check = time.monotonic() + _STUCK_EVERY
            await asyncio.sleep(_POLL)
    finally:
        if proc is not None:
            if proc.alive():
                proc.stop(grace=2)
            ctx.reap(proc)
        if trigger is not None and not trigger.done():
            trigger.cancel()

    if worker_died:
        return await _worker_crashed(ctx, client, pipeline)
    output = proc.output(2000) if proc is not None else ""
    root = str(ctx.workspace.app) if ctx.workspace is not None else ""
    # The trigger's last exception first, staging's own frames dropped (staging.evidence).
    tail = build_evidence(output, root=root, tail=10) if output.strip() else ()
    if proc is not None:
        record.exit_code = proc.returncode
    outcomes = [o for o in await workflow_outcomes(client) if o.workflow_id not in seen]
    # A trigger may start workflows and exit without waiting (fire and forget): the
    # pipeline is done when its workflows are, so wait for them under the same rules.
    while not stuck and not timed_out and any(o.status == "running" for o in outcomes):
        if time.monotonic() >= deadline:
            timed_out = True
            break
        stuck = await find_stuck_activity(client, tracker=tracker)
        if stuck is None:
            await asyncio.sleep(_STUCK_EVERY)
            outcomes = [o for o in await workflow_outcomes(client) if o.workflow_id not in seen]
    seen.update(o.workflow_id for o in outcomes)
    record.workflows = [ctx.redactor.value(o.to_dict()) for o in outcomes]
    extra = tail + _worker_note(ctx)
    redact = ctx.redactor.text

    if (
        stuck is None
        and trigger is not None
        and trigger.done()
        and not trigger.cancelled()
        and trigger.exception() is None
    ):
        # The harness's own watch found it first and terminated the workflow: that
        # termination is the symptom, the stuck task the cause.
        stuck = trigger.result().stuck
    if stuck is not None:
        return _for_pipeline(pipeline, stuck.diagnosis(redact=redact), extra)
    failed = [o for o in outcomes if o.failed]
    if failed:
        diagnosis = failed[0].diagnosis(redact=redact)
        assert diagnosis is not None
        return _for_pipeline(pipeline, diagnosis, extra)
    if trigger is not None and trigger.done() and not trigger.cancelled():
        diagnosis = trigger.result().diagnosis(redact=redact)
        if diagnosis is not None:
            return _for_pipeline(pipeline, diagnosis, extra)
    if timed_out:
        running = [o for o in outcomes if o.status == "running"]
        return Diagnosis(
            FailureClass.PIPELINE_TIMEOUT,
            f"pipeline {pipeline.name!r} did not finish within {timeout:g}s and nothing failed"
            + (f"; still running: {', '.join(o.workflow_id for o in running)}" if running else ""),
            hint="raise the pipeline's `timeout` if this is expected, or look for a workflow "
            "waiting on a signal, a timer, or a task queue nobody polls",
            evidence=extra,
        )
    if proc is not None and proc.returncode != 0 and _finalization_crash(output, outcomes):
        ctx.notes.append(
            f"note: pipeline {pipeline.name!r}: the trigger's workflows completed, then the "
            "trigger process aborted during interpreter shutdown (PyGILState_Release, "
            "temporalio/sdk-python#300). Exit such scripts with os._exit() after flushing."
        )
        return None
    if proc is not None and proc.returncode != 0:
        shown = " ".join(pipeline.command or [])
        cause = f"pipeline {pipeline.name!r}: trigger `{shown}` exited with code {proc.returncode}"
        cause += headline_for_cause(output)
        if is_db_auth_failure(output):
            return Diagnosis(
                FailureClass.DB_AUTH_FAILED,
                cause + ": Postgres rejected the app's credentials",
                hint="check that the settings class still reads the credentials staging "
                "delivered (env_file, env_prefix) and how the DSN is built",
                evidence=build_evidence(output, root=root),
            )
        trap = find_trap(output)
        return Diagnosis(
            FailureClass.PIPELINE_FAILED,
            f"{cause}; {trap.cause}" if trap else cause,
            hint=(f"{trap.hint}; " if trap else "")
            + f"its full output is in logs/pipeline-{pipeline.name}.log",
            evidence=build_evidence(output, root=root) + _worker_note(ctx),
        )
    return None


def _finalization_crash(output: str, outcomes: list[WorkflowOutcome]) -> bool:
    """The trigger finished its work and crashed only while the interpreter shut down."""
    return (
        "PyGILState_Release" in output
        and "finalizing" in output
        and bool(outcomes)
        and all(o.status == "completed" for o in outcomes)
    )


def _for_pipeline(
    pipeline: PipelineConfig, diagnosis: Diagnosis, extra: tuple[str, ...]
) -> Diagnosis:
    """Name the pipeline in the cause and append the trigger's own output as evidence."""
    return Diagnosis(
        diagnosis.failure_class,
        f"pipeline {pipeline.name!r}: {diagnosis.cause}",
        diagnosis.hint,
        diagnosis.evidence + tuple(line for line in extra if line not in diagnosis.evidence),
    )


def _worker_note(ctx: RunContext) -> tuple[str, ...]:
    if ctx.worker is not None and not ctx.worker.alive():
        return (f"the worker exited with code {ctx.worker.returncode} during the pipeline",)
    return ()


def _dead_worker(ctx: RunContext) -> ManagedProcess | None:
    """The first of the run's workers (every replica) that is no longer running."""
    workers = ctx.workers or ([ctx.worker] if ctx.worker is not None else [])
    return next((w for w in workers if not w.alive()), None)


def _raise_if_lost(ctx: RunContext) -> None:
    """A service that died mid-pipeline ends the wait at once, as infrastructure."""
    assert ctx.environment is not None
    lost = lost_services(ctx.environment)
    if lost:
        raise ServiceLost(*lost[0])


def exit_description(code: int | None) -> str:
    if code is None:
        return "exited (status unknown)"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
        return f"was killed by signal {-code}"
    return f"exited with code {code}"


async def _worker_crashed(ctx: RunContext, client: Client, pipeline: PipelineConfig) -> Diagnosis:
    """`worker.crashed` at once, naming how it ended and what it was running."""
    _raise_if_lost(ctx)  # a worker that died with its server is the server's loss
    worker = _dead_worker(ctx)
    assert worker is not None
    worker.wait(timeout=2)
    unknown: tuple[str, ...] = ()
    try:
        running = await pending_activities(client)
    except Exception as exc:  # the server is asked next, by the runner; not a reason to fail
        running, unknown = [], (f"(its activities could not be listed: {exc})",)
    doing = f"; it was running {', '.join(running)}" if running else ""
    return Diagnosis(
        FailureClass.WORKER_CRASHED,
        f"pipeline {pipeline.name!r}: the worker (pid {worker.pid}) "
        f"{exit_description(worker.returncode)} while the pipeline ran{doing}",
        hint=f"a worker must stay up while pipelines run: logs/{worker.log_path.name} shows "
        "why it ended; a kill from outside (the OOM killer, a deploy script) or os._exit() "
        "in an activity look like this",
        evidence=unknown + tuple(worker.output(15).splitlines()[-15:]),
    )
