"""The `interrupt` phase (`interrupt = true` or `staging run --chaos`): activities cut off.

Baseline first: the pipelines phase just ran without interruption, so the SQL checks are
judged now, read-only. Then the database's schemas are dropped and the setup steps run
again, the workers restart, and the pipelines run a second time from that same empty
state while `kill.Interrupter` kills the worker running each activity type once. The
checks are judged again: one that held before and fails now is `pipeline.not_idempotent`,
naming the activity and the check. The same run, the same code, the same starting data:
only the interruption differs (the last green run's check results would compare two
trees). The checks phase then judges the interrupted pass as usual.
"""

from __future__ import annotations

from typing import Any

from temporalio.client import Client

from staging.context import ConfigDone, RunContext, ServicesDone
from staging.phases.checks import judge_check, read_only_connection
from staging.process import ManagedProcess
from staging.result import Diagnosis, FailureClass, PhaseResult
from staging.rollout.kill import Interrupter, Kill
from staging.services.connect import postgres_connection, temporal_client
from staging.temporal.scope import RunScope

_USER_SCHEMAS = """
    select nspname from pg_namespace
    where nspname not like 'pg\\_%' and nspname <> 'information_schema'
"""


def interrupt_phase(ctx: RunContext) -> PhaseResult:
    baseline = _judge(ctx)
    if not all(baseline.values()):
        return PhaseResult.skipped("interrupt", "the checks fail without interruption already")
    for proc in ctx.workers:
        proc.stop(grace=2)
        ctx.reap(proc)
    ctx.workers, ctx.worker = [], None
    try:
        _empty_database(ctx)
    except Exception as exc:  # no rights to drop the app's schemas: say so, judge the rest
        why = f"the staging database could not be emptied for the second pass ({exc})"
        ctx.notes.append(f"note: activities not interrupted: {why}")
        return PhaseResult.skipped("interrupt", why)
    from staging.phases.pipelines import pipelines_phase
    from staging.phases.setup import setup_phase
    from staging.phases.worker import worker_phase

    for again in (setup_phase, worker_phase):
        result = again(ctx)
        if not result:
            result.name = "interrupt"
            return result
    baseline_records, ctx.pipelines = ctx.pipelines, []
    interrupter = _interrupter(ctx)
    first = ctx.worker
    ctx.worker = None  # the pipelines phase treats a dead first worker as a crash
    interrupter.start()
    try:
        ran = pipelines_phase(ctx)
    finally:
        interrupter.stop()
        ctx.worker = next((w for w in ctx.workers if w.alive()), first)
    details: dict[str, Any] = {
        "interrupted": [k.describe() for k in interrupter.kills],
        "not_interrupted": sorted(interrupter.seen - {k.activity for k in interrupter.kills}),
        "baseline": [{"pipeline": r.name, "status": r.status} for r in baseline_records],
    }
    if interrupter.error:
        details["watch_error"] = interrupter.error
    if not ran:
        assert ran.diagnosis is not None
        return PhaseResult.failed(
            "interrupt", _failed_pass(ran.diagnosis, interrupter.kills), **details
        )
    after = _judge(ctx)
    changed = [check for check, ok in after.items() if baseline.get(check) and not ok]
    if changed:
        return PhaseResult.failed(
            "interrupt", _not_idempotent(changed, interrupter.kills, after), **details
        )
    kills = ", ".join(repr(k.activity) for k in interrupter.kills) or "nothing"
    summary = f"interrupted {kills}; the checks hold as without interruption"
    if details["not_interrupted"]:
        summary += f" · too short to interrupt: {', '.join(details['not_interrupted'])}"
    return PhaseResult.passed("interrupt", summary=summary, **details)


def _judge(ctx: RunContext) -> dict[str, bool]:
    ran = {r.name for r in ctx.pipelines}
    configured = ctx.need(ConfigDone).loaded.config.pipelines
    checks = [c for p in configured if p.name in ran for c in p.checks]
    with read_only_connection(ctx.need(ServicesDone).environment.postgres) as conn:
        return {check: judge_check(conn, check).ok for check in checks}


def _empty_database(ctx: RunContext) -> None:
    """Every schema the app's setup made, dropped: the second pass starts where the first did."""
    with postgres_connection(ctx.need(ServicesDone).environment.postgres) as conn:
        schemas = [row[0] for row in conn.execute(_USER_SCHEMAS).fetchall()]
        for schema in schemas:
            conn.execute(f'drop schema "{schema}" cascade')
        conn.execute("create schema public")


def _interrupter(ctx: RunContext) -> Interrupter:
    temporal = ctx.need(ServicesDone).environment.temporal
    config = ctx.need(ConfigDone).loaded.config
    by_name = {w.name: w for w in config.workers}
    replaced: list[ManagedProcess] = []

    def replace(dead: ManagedProcess) -> ManagedProcess:
        cfg = next((c for n, c in by_name.items() if dead.name.startswith(f"worker-{n}")), None)
        cfg = cfg or config.worker
        proc = ctx.spawn(
            f"{dead.name}-replacement-{len(replaced) + 1}", cfg.command, "worker", cfg.cwd
        )
        replaced.append(proc)
        ctx.workers.append(proc)
        return proc

    async def connect() -> Client:
        return await temporal_client(temporal)

    def forget(proc: ManagedProcess) -> None:
        ctx.workers = [w for w in ctx.workers if w is not proc]
        ctx.reap(proc)

    return Interrupter(
        connect=connect,
        workers=lambda: list(ctx.workers),
        replace=replace,
        forget=forget,
        scope=RunScope.of_run(config, temporal),
    )


def _failed_pass(diagnosis: Diagnosis, kills: list[Kill]) -> Diagnosis:
    """The interrupted pass failed; when the failing activity was one cut off, that is why."""
    hit = next((k for k in kills if repr(k.activity) in diagnosis.cause), None)
    if hit is None:
        return Diagnosis(
            diagnosis.failure_class,
            f"with activities interrupted: {diagnosis.cause}",
            diagnosis.hint,
            diagnosis.evidence + tuple(k.describe() for k in kills),
        )
    return Diagnosis(
        FailureClass.PIPELINE_NOT_IDEMPOTENT,
        f"activity {hit.activity!r} fails when retried after an interruption: {diagnosis.cause}",
        hint=_HINT,
        evidence=(hit.describe(), *diagnosis.evidence),
    )


def _not_idempotent(changed: list[str], kills: list[Kill], after: dict[str, bool]) -> Diagnosis:
    names = ", ".join(repr(k.activity) for k in kills) or "no activity"
    return Diagnosis(
        FailureClass.PIPELINE_NOT_IDEMPOTENT,
        f"check `{changed[0]}` holds without interruption but not after activity {names} was "
        "killed mid-run and retried: the retry repeated work the cut-off attempt had done",
        hint=_HINT,
        evidence=(
            *(k.describe() for k in kills),
            *(f"check `{c}`: held without interruption, fails with it" for c in changed),
        ),
    )


_HINT = (
    "an activity may run more than once (a deploy, a crash or a timeout cuts it off and "
    "Temporal retries it): make its writes idempotent (INSERT ... ON CONFLICT, a unique key "
    "per row, or one transaction), and give long activities a heartbeat_timeout so the "
    "retry starts promptly"
)
