"""Phase 8: post-conditions — notification limits, then SQL assertions on the staging DB."""

from __future__ import annotations

import psycopg

from staging.context import RunContext
from staging.result import Diagnosis, FailureClass, PhaseResult


def checks_phase(ctx: RunContext) -> PhaseResult:
    assert ctx.loaded is not None and ctx.environment is not None
    by_name = {p.name: p for p in ctx.loaded.config.pipelines}
    ran = [(by_name[r.name], r) for r in ctx.pipelines if r.name in by_name]
    if not ran:
        return PhaseResult.skipped("checks", "no pipelines ran")

    for pipeline, record in ran:
        limit = pipeline.max_notifications
        if limit is not None and record.notifications > limit:
            sample = _sample_notifications(ctx)
            return PhaseResult.failed(
                "checks",
                Diagnosis(
                    FailureClass.NOTIFICATIONS_FLOOD,
                    f"pipeline {pipeline.name!r} sent {record.notifications} notification(s); "
                    f"the limit is {limit}. In production each one reaches a real channel.",
                    hint="notify once per failed run, not per row/attempt; captured messages are "
                    "in notifications.json",
                    evidence=tuple(sample),
                ),
            )

    results: list[dict[str, object]] = []
    conninfo = ctx.environment.postgres.conninfo()
    with psycopg.connect(**conninfo, connect_timeout=10, autocommit=True) as conn:  # type: ignore[arg-type]
        for pipeline, record in ran:
            for check in pipeline.checks:
                sql = (
                    check
                    if check.lstrip().lower().startswith(("select", "with"))
                    else (f"select {check}")
                )
                try:
                    row = conn.execute(sql).fetchone()
                except psycopg.Error as exc:
                    return _failed(pipeline.name, check, f"the query raised: {exc}".strip())
                value = row[0] if row else None
                record.checks.append({"check": check, "value": repr(value), "ok": bool(value)})
                results.append({"pipeline": pipeline.name, "check": check, "value": repr(value)})
                if not value:
                    return _failed(pipeline.name, check, f"it returned {value!r}")
    return PhaseResult.passed(
        "checks",
        summary=f"{len(results)} SQL check(s), notifications within limits",
        checks=results,
    )


def _failed(pipeline: str, check: str, why: str) -> PhaseResult:
    return PhaseResult.failed(
        "checks",
        Diagnosis(
            FailureClass.CHECK_FAILED,
            f"pipeline {pipeline!r}: check `{check}` did not hold: {why}",
            hint="the pipeline reported success but its data is not what the check expects; "
            "inspect the tables with `staging run --keep-on-failure` and the printed psql line",
            evidence=(check,),
        ),
    )


def _sample_notifications(ctx: RunContext) -> list[str]:
    if ctx.captures is None:
        return []
    lines = []
    for item in ctx.captures.to_json()[:5]:
        body = item.get("json") or item.get("body") or ""
        lines.append(f"{item.get('name')}: {str(body)[:160]}")
    return lines
