"""Phase 8 (with `--rollout`): rehearse the deploy from the last green tree to this one.

Runs after the pipelines phase (so the checks see both) and before the checks. Off by
default; on, it needs a last green tree of this app in git (`.staging/last-green.json`)
and skips with a note without one. See `staging.rollout.rehearsal` for the steps.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from staging.config.model import PipelineConfig, RolloutConfig
from staging.context import ConfigDone, PhaseOrderError, RunContext, ServicesDone, WorkspaceDone
from staging.gate.store import VerdictStore
from staging.phases.workspace import app_process_env
from staging.result import Diagnosis, FailureClass, PhaseResult
from staging.rollout.history import RolloutDivergence, closed, describe_at, find_divergence
from staging.rollout.rehearsal import InFlight, Rehearsal, Skip
from staging.rollout.tree import GreenTree, NoGreenTree, last_green_tree, materialise
from staging.services.connect import temporal_client
from staging.temporal.failures import workflow_outcome
from staging.temporal.watch import RetryTracker, find_stuck_activity
from staging.workspace import Workspace, deliver

_POLL = 0.2
_STUCK_EVERY = 0.5


def rollout_phase(ctx: RunContext) -> PhaseResult:
    loaded = ctx.need(ConfigDone).loaded
    cfg = loaded.config.rollout
    if not cfg.enabled:
        return PhaseResult.skipped("rollout", "off (`staging run --rollout` rehearses the deploy)")
    wanted = ctx.options.pipelines
    pipelines = [p for p in loaded.config.pipelines if not wanted or p.name in wanted]
    if not pipelines:
        return PhaseResult.skipped("rollout", "no pipelines to keep in flight")
    if ctx.app_record is None:
        raise PhaseOrderError("the config phase creates the app record before any rollout")
    try:
        green = last_green_tree(loaded.app_dir)
        old = materialise(loaded.app_dir, green, ctx.app_record.workspace_parent)
    except NoGreenTree as exc:
        return _skip(ctx, str(exc))
    try:
        env = _old_env(ctx, old)
        halfway = _halfway(ctx, green)
        return asyncio.run(_rehearse(ctx, cfg, green, old, env, pipelines, halfway))
    except Skip as exc:
        return _skip(ctx, str(exc))
    finally:
        old.remove()


def _skip(ctx: RunContext, why: str) -> PhaseResult:
    ctx.notes.append(f"note: rollout not rehearsed: {why}")
    return PhaseResult.skipped("rollout", f"not rehearsed: {why}")


def _old_env(ctx: RunContext, old: Workspace) -> dict[str, str]:
    """The old tree's processes get this run's settings, delivered into its own copy."""
    loaded, done = ctx.need(ConfigDone).loaded, ctx.need(WorkspaceDone)
    cfg = loaded.config
    delivery = deliver(old, done.rendered_env, mode=cfg.settings.delivery, path=cfg.settings.path)
    keep = set(delivery.env_vars) | set(cfg.process_env)
    variables = {k: v for k, v in done.app_env.items() if k in keep}
    variables.update(delivery.env_vars)
    return app_process_env(loaded, old, variables, old.root / "origins")


def _halfway(ctx: RunContext, green: GreenTree) -> int | None:
    """Half the event count of the last green run's rehearsed workflows, if it rehearsed."""
    try:
        verdict = VerdictStore(ctx.need(ConfigDone).loaded.app_dir).run(green.run_id).verdict or {}
    except Exception:  # an unreadable old run only costs the finer swap point
        return None
    for phase in verdict.get("phases") or ():
        if isinstance(phase, dict) and phase.get("name") == "rollout":
            counts = [
                int(w.get("events") or 0) for w in phase.get("details", {}).get("workflows", [])
            ]
            if counts and max(counts) >= 4:
                return max(counts) // 2
    return None


async def _rehearse(
    ctx: RunContext,
    cfg: RolloutConfig,
    green: GreenTree,
    old: Workspace,
    env: dict[str, str],
    pipelines: list[PipelineConfig],
    halfway: int | None,
) -> PhaseResult:
    client = await temporal_client(ctx.need(ServicesDone).environment.temporal)
    rehearsal = Rehearsal(ctx, cfg, old, env, pipelines, halfway)
    try:
        flights = await rehearsal.run(client)
        diagnosis = await _until_done(ctx, client, cfg, rehearsal, flights, green)
    finally:
        rehearsal.stop_old()
        rehearsal.stop_triggers()
    details: dict[str, Any] = {
        "from_tree": green.tree,
        "from_commit": green.commit,
        "strategy": cfg.strategy,
        "at": describe_at(cfg.at, halfway),
        "swap_at": rehearsal.swap_at,
        "swapped_at": rehearsal.swapped_at,
        "workflows": [f.to_dict() for f in flights],
        "stops": rehearsal.log,
        "resets": rehearsal.resets,
    }
    if diagnosis is not None:
        return PhaseResult.failed("rollout", diagnosis, **details)
    summary = (
        f"{green.label} -> this tree · {cfg.strategy} swap {describe_at(cfg.at, halfway)} · "
        f"{len(flights)} in-flight workflow(s) completed on this tree"
    )
    return PhaseResult.passed("rollout", summary=summary, **details)


async def _histories(client: Client, flights: list[InFlight]) -> None:
    for f in flights:
        history = await client.get_workflow_handle(f.workflow_id, run_id=f.run_id).fetch_history()
        f.events = list(history.events)


def _diverged(flights: list[InFlight]) -> tuple[InFlight, RolloutDivergence] | None:
    for f in flights:
        div = find_divergence(f.events)
        if div is not None:
            return f, div
    return None


async def _until_done(
    ctx: RunContext,
    client: Client,
    cfg: RolloutConfig,
    rehearsal: Rehearsal,
    flights: list[InFlight],
    green: GreenTree,
) -> Diagnosis | None:
    """Every in-flight workflow completes on this tree, or the first reason it cannot."""
    deadline = time.monotonic() + min(
        max(p.timeout for p in rehearsal.pipelines), max(1.0, ctx.remaining())
    )
    progress: dict[str, tuple[int, float]] = {}
    tracker = RetryTracker(stuck_after=min(p.stuck_after for p in rehearsal.pipelines))
    next_stuck = time.monotonic() + _STUCK_EVERY
    while True:
        await _histories(client, flights)
        if (found := _diverged(flights)) is not None:
            return _nondeterminism(rehearsal, green, *found)
        running = [f for f in flights if not closed(f.events)]
        if not running:
            break
        now = time.monotonic()
        for f in running:
            count, since = progress.get(f.workflow_id, (-1, now))
            progress[f.workflow_id] = (len(f.events), now if len(f.events) != count else since)
        idle = [f for f in running if now - progress[f.workflow_id][1] >= _patience(cfg, f)]
        if idle or now >= deadline:
            return _stuck(
                rehearsal, (idle or running)[0], now - progress[(idle or running)[0].workflow_id][1]
            )
        if now >= next_stuck:
            stuck = await find_stuck_activity(client, scope=rehearsal.scope, tracker=tracker)
            if stuck is not None:
                await _histories(client, flights)  # a non-determinism is the cause, if it is one
                if (found := _diverged(flights)) is not None:
                    return _nondeterminism(rehearsal, green, *found)
                return _after_swap(stuck.diagnosis(redact=ctx.redactor.text))
            next_stuck = time.monotonic() + _STUCK_EVERY
        await asyncio.sleep(_POLL)
    for f in flights:
        outcome = await workflow_outcome(client, f.workflow_id, f.run_id)
        diagnosis = outcome.diagnosis(redact=ctx.redactor.text)
        if diagnosis is not None:
            return _after_swap(diagnosis)
    return None


_TASK_PENDING = {
    EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
}
_TASK_TIMEOUT_MARGIN = 5.0


def _patience(cfg: RolloutConfig, flight: InFlight) -> float:
    """Seconds without a new event before a workflow is stuck.

    A workflow task that a stopped worker took (or whose sticky queue it polled) is handed
    on only after the workflow task timeout: until then a quiet history is the server
    waiting, not the workflow stuck.
    """
    if not flight.events or flight.events[-1].event_type not in _TASK_PENDING:
        return cfg.stuck_after
    first = flight.events[0].workflow_execution_started_event_attributes
    timeout = first.workflow_task_timeout.ToTimedelta().total_seconds() or 10.0
    return max(cfg.stuck_after, timeout + _TASK_TIMEOUT_MARGIN)


def _after_swap(diagnosis: Diagnosis) -> Diagnosis:
    return Diagnosis(
        diagnosis.failure_class,
        f"after the worker swap of the rollout: {diagnosis.cause}",
        diagnosis.hint,
        diagnosis.evidence,
    )


def _nondeterminism(
    rehearsal: Rehearsal, green: GreenTree, flight: InFlight, div: RolloutDivergence
) -> Diagnosis:
    return Diagnosis(
        FailureClass.ROLLOUT_NONDETERMINISM,
        f"workflow {flight.workflow_type} (id {flight.workflow_id}), started on the last green "
        f"tree ({green.label}), cannot continue on this tree after the "
        f"{rehearsal.cfg.strategy} swap: {div.describe()}",
        hint="workflows running in production when you deploy replay their history on the new "
        "code: guard the change with `if workflow.patched('change-id'):` (old histories take "
        "the old path), or give the new behaviour a new workflow type and let the running ones "
        "drain; `staging run --record tests/histories` keeps a history for the replay phase",
        evidence=(
            f"expected: this tree issues what the old code recorded ({div.old})",
            f"observed: it {div.new.removeprefix('issues ')}"
            if div.new.startswith("issues ")
            else f"observed: {div.new}",
            div.divergence.detail,
            *rehearsal.log,
            *rehearsal.resets,
        ),
    )


def _stuck(rehearsal: Rehearsal, flight: InFlight, idle: float) -> Diagnosis:
    last = flight.events[-1] if flight.events else None
    kind = EventType.Name(last.event_type).removeprefix("EVENT_TYPE_") if last else ""
    shown = f"event {last.event_id} ({kind})" if last else "no event"
    if last is not None and last.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
        taker = last.workflow_task_started_event_attributes.identity
        shown = f"event {last.event_id} ({kind}, taken by {taker or 'an unnamed worker'})"
    return Diagnosis(
        FailureClass.ROLLOUT_STUCK,
        f"workflow {flight.workflow_type} (id {flight.workflow_id}) made no progress for "
        f"{idle:.0f}s after the worker swap; its history ends at {shown}",
        hint="an activity cut off by the stop retries only after its start_to_close_timeout "
        "unless it has a heartbeat_timeout and heartbeats; give long activities a heartbeat "
        "timeout, and check the new worker polls the same task queue",
        evidence=(*rehearsal.log, *rehearsal.resets),
    )
