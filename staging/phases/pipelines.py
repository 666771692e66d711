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
from dataclasses import dataclass, field
from typing import Any

from temporalio.client import Client

from staging.config.model import PipelineConfig
from staging.context import ConfigDone, PipelineRecord, RunContext, ServicesDone
from staging.db_errors import is_db_auth_failure
from staging.evidence import build_evidence, headline_for_cause
from staging.process import ManagedProcess
from staging.result import Diagnosis, FailureClass, PhaseResult
from staging.services.connect import ServiceLost, lost_services, temporal_client
from staging.temporal.failures import WorkflowOutcome, workflow_outcomes
from staging.temporal.scope import WHOLE_NAMESPACE, RunScope
from staging.temporal.trigger import TriggerResult, start_and_wait
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
    wanted = ctx.options.pipelines
    configured = ctx.need(ConfigDone).loaded.config.pipelines
    pipelines = [p for p in configured if not wanted or p.name in wanted]
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
    environment = ctx.need(ServicesDone).environment
    while True:
        lost = await asyncio.to_thread(lost_services, environment)
        if lost:
            raise ServiceLost(*lost[0])
        await asyncio.sleep(_GUARD_EVERY)


async def _run_pipelines(ctx: RunContext, pipelines: list[PipelineConfig]) -> PhaseResult:
    services = ctx.need(ServicesDone)
    client = await temporal_client(services.environment.temporal)
    seen: set[str] = set()
    for pipeline in pipelines:
        record = PipelineRecord(name=pipeline.name)
        ctx.pipelines.append(record)
        began = time.monotonic()
        before = services.captures.count()
        diagnosis = await _run_one(ctx, client, pipeline, record, seen)
        record.duration = time.monotonic() - began
        record.notifications = services.captures.count() - before
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


@dataclass
class _Started:
    """A pipeline's trigger, running: a workflow the harness started, or the app's command."""

    pipeline: PipelineConfig
    timeout: float
    deadline: float
    tracker: RetryTracker
    proc: ManagedProcess | None = None
    trigger: asyncio.Future[TriggerResult] | None = None
    scope: RunScope = WHOLE_NAMESPACE  # the workflows the scans of this pipeline see


@dataclass
class _Ended:
    """What the wait saw: why it stopped, and the workflows the pipeline started."""

    stuck: StuckActivity | None = None
    timed_out: bool = False
    dead_worker: ManagedProcess | None = None  # a worker that exited while the trigger ran
    output: str = ""
    outcomes: list[WorkflowOutcome] = field(default_factory=list)


async def _run_one(
    ctx: RunContext,
    client: Client,
    pipeline: PipelineConfig,
    record: PipelineRecord,
    seen: set[str],
) -> Diagnosis | None:
    started = _start(ctx, client, pipeline)
    try:
        ended = await _wait_for_trigger(ctx, client, started)
    finally:
        _stop_trigger(ctx, started)
    if ended.dead_worker is not None:
        return await _worker_crashed(ctx, client, pipeline, ended.dead_worker)
    if started.proc is not None:
        ended.output = started.proc.output(2000)
        record.exit_code = started.proc.returncode
    await _wait_for_workflows(client, started, ended, seen)
    seen.update(o.workflow_id for o in ended.outcomes)
    record.workflows = [ctx.redactor.value(o.to_dict()) for o in ended.outcomes]
    return _classify(ctx, started, ended)


def _start(ctx: RunContext, client: Client, pipeline: PipelineConfig) -> _Started:
    timeout = min(pipeline.timeout, max(1.0, ctx.remaining()))
    tracker = RetryTracker(stuck_after=pipeline.stuck_after)
    started = _Started(pipeline, timeout, deadline=0.0, tracker=tracker, scope=_run_scope(ctx))
    if pipeline.workflow is not None:
        task_queue = pipeline.task_queue or ctx.need(ConfigDone).loaded.config.worker.task_queue
        started.trigger = asyncio.ensure_future(
            start_and_wait(
                client,
                pipeline.workflow,
                pipeline.args,
                task_queue=task_queue,
                workflow_id=f"staging-{pipeline.name}-{ctx.run_id}",
                timeout=timeout,
            )
        )
    else:
        # The model requires a command when there is no workflow.
        command = pipeline.command or []
        started.proc = ctx.spawn(
            f"pipeline-{pipeline.name}", command, role="trigger", cwd=pipeline.cwd
        )
    # A timeout counts from the trigger's start, as it always did.
    started.deadline = time.monotonic() + timeout
    return started


async def _wait_for_trigger(ctx: RunContext, client: Client, started: _Started) -> _Ended:
    """Until the trigger ends, a worker dies, the timeout passes or an activity is stuck."""
    next_stuck_check = time.monotonic() + _STUCK_EVERY
    while True:
        dead = _dead_worker(ctx)
        if dead is not None:
            return _Ended(dead_worker=dead)
        if started.proc is not None and not started.proc.alive():
            return _Ended()
        if started.trigger is not None and started.trigger.done():
            return _Ended()
        now = time.monotonic()
        if now >= started.deadline:
            return _Ended(timed_out=True)
        if now >= next_stuck_check:
            stuck = await _stuck(client, started)
            if stuck is not None:
                return _Ended(stuck=stuck)
            next_stuck_check = time.monotonic() + _STUCK_EVERY
        await asyncio.sleep(_POLL)


def _stop_trigger(ctx: RunContext, started: _Started) -> None:
    if started.proc is not None:
        if started.proc.alive():
            started.proc.stop(grace=2)
        ctx.reap(started.proc)
    if started.trigger is not None and not started.trigger.done():
        started.trigger.cancel()


async def _wait_for_workflows(
    client: Client, started: _Started, ended: _Ended, seen: set[str]
) -> None:
    """A trigger may start workflows and exit without waiting (fire and forget): the
    pipeline is done when its workflows are, so wait for them under the same rules."""
    ended.outcomes = await _outcomes(client, seen, started.scope)
    while (
        not ended.stuck
        and not ended.timed_out
        and any(o.status == "running" for o in ended.outcomes)
    ):
        if time.monotonic() >= started.deadline:
            ended.timed_out = True
            return
        ended.stuck = await _stuck(client, started)
        if ended.stuck is None:
            await asyncio.sleep(_STUCK_EVERY)
            ended.outcomes = await _outcomes(client, seen, started.scope)


async def _outcomes(client: Client, seen: set[str], scope: RunScope) -> list[WorkflowOutcome]:
    """The workflows this pipeline started: those no earlier pipeline of the run saw."""
    return [o for o in await workflow_outcomes(client, scope=scope) if o.workflow_id not in seen]


async def _stuck(client: Client, started: _Started) -> StuckActivity | None:
    return await find_stuck_activity(client, scope=started.scope, tracker=started.tracker)


def _run_scope(ctx: RunContext) -> RunScope:
    """The run's workflows: the whole namespace, unless it is shared (an attached cluster)."""
    config = ctx.need(ConfigDone).loaded.config
    return RunScope.of_run(config, ctx.need(ServicesDone).environment.temporal)


def _classify(ctx: RunContext, started: _Started, ended: _Ended) -> Diagnosis | None:
    """The one diagnosis of a pipeline that ended: the workflows' story first (a stuck
    activity, a failed workflow, the harness's verdict), then timeout, then the exit."""
    root = str(ctx.workspace.app) if ctx.workspace is not None else ""
    # The trigger's last exception first, staging's own frames dropped (staging.evidence).
    output = ended.output
    tail = build_evidence(output, root=root, tail=10) if output.strip() else ()
    extra = tail + _worker_note(ctx)
    found = _workflow_diagnosis(ctx, started, ended)
    if found is not None:
        return _for_pipeline(started.pipeline, found, extra)
    if ended.timed_out:
        return _timed_out(started, ended, extra)
    if started.proc is not None and started.proc.returncode != 0:
        return _trigger_exited(ctx, started.proc, started, ended, root)
    return None


def _workflow_diagnosis(ctx: RunContext, started: _Started, ended: _Ended) -> Diagnosis | None:
    redact = ctx.redactor.text
    trigger = started.trigger
    result = (
        trigger.result()
        if trigger is not None
        and trigger.done()
        and not trigger.cancelled()
        and trigger.exception() is None
        else None
    )
    # The harness's own watch found it first and terminated the workflow: that
    # termination is the symptom, the stuck task the cause.
    stuck = ended.stuck or (result.stuck if result is not None else None)
    if stuck is not None:
        return stuck.diagnosis(redact=redact)
    failed = [o for o in ended.outcomes if o.failed]
    if failed:
        return failed[0].diagnosis(redact=redact)
    if trigger is not None and trigger.done() and not trigger.cancelled():
        # A trigger that raised re-raises here, as it always did: the runner reports it.
        return trigger.result().diagnosis(redact=redact)
    return None


def _timed_out(started: _Started, ended: _Ended, extra: tuple[str, ...]) -> Diagnosis:
    running = [o for o in ended.outcomes if o.status == "running"]
    name = started.pipeline.name
    return Diagnosis(
        FailureClass.PIPELINE_TIMEOUT,
        f"pipeline {name!r} did not finish within {started.timeout:g}s and nothing failed"
        + (f"; still running: {', '.join(o.workflow_id for o in running)}" if running else ""),
        hint="raise the pipeline's `timeout` if this is expected, or look for a workflow "
        "waiting on a signal, a timer, or a task queue nobody polls",
        evidence=extra,
    )


def _trigger_exited(
    ctx: RunContext, proc: ManagedProcess, started: _Started, ended: _Ended, root: str
) -> Diagnosis | None:
    """The app's trigger command (`proc`) exited non-zero while no workflow failed."""
    pipeline, output, code = started.pipeline, ended.output, proc.returncode
    if _finalization_crash(output, ended.outcomes):
        ctx.notes.append(
            f"note: pipeline {pipeline.name!r}: the trigger's workflows completed, then the "
            "trigger process aborted during interpreter shutdown (PyGILState_Release, "
            "temporalio/sdk-python#300). Exit such scripts with os._exit() after flushing."
        )
        return None
    shown = " ".join(pipeline.command or [])
    cause = f"pipeline {pipeline.name!r}: trigger `{shown}` exited with code {code}"
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
    lost = lost_services(ctx.need(ServicesDone).environment)
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


async def _worker_crashed(
    ctx: RunContext, client: Client, pipeline: PipelineConfig, worker: ManagedProcess
) -> Diagnosis:
    """`worker.crashed` at once, naming how it ended and what it was running."""
    _raise_if_lost(ctx)  # a worker that died with its server is the server's loss
    worker.wait(timeout=2)
    unknown: tuple[str, ...] = ()
    try:
        running = await pending_activities(client, scope=_run_scope(ctx))
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
