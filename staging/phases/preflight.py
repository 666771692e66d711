"""Phase 4: the app's own Settings class, loaded in the app's interpreter, field by field."""

from __future__ import annotations

from staging.context import RunContext
from staging.preflight import analyse, provenance_table, run_probe
from staging.result import PhaseResult


def preflight_phase(ctx: RunContext) -> PhaseResult:
    assert ctx.loaded is not None and ctx.workspace is not None and ctx.delivery is not None
    assert ctx.environment is not None and ctx.captures is not None
    settings = ctx.loaded.config.settings
    if not settings.class_:
        return PhaseResult.skipped("preflight", "no [tool.staging.settings] class configured")
    report = run_probe(
        ctx.loaded.python,
        ctx.workspace.app,
        ctx.app_env,
        settings.class_,
        settings.required,
        timeout=max(5.0, min(60.0, ctx.remaining())),
        redactor=ctx.redactor,
        forkserver=ctx.forkserver,
    )
    ctx.probe = report
    ctx.provenance = provenance_table(report)
    hosts = {
        ctx.environment.postgres.host,
        ctx.environment.temporal.host,
        *ctx.captures.hosts(),
        "127.0.0.1",
        "localhost",
        "::1",
    }
    diagnosis = analyse(
        report,
        settings_class=settings.class_,
        required=settings.required,
        delivered=ctx.rendered_env,
        channel=ctx.delivery.channel,
        staging_hosts=hosts,
        redactor=ctx.redactor,
    )
    if diagnosis is not None:
        return PhaseResult.failed("preflight", diagnosis, provenance=ctx.provenance)
    by_source: dict[str, int] = {}
    for row in ctx.provenance:
        by_source[row["source"]] = by_source.get(row["source"], 0) + 1
    summary = ", ".join(f"{n} from {s}" for s, n in sorted(by_source.items()))
    return PhaseResult.passed(
        "preflight", summary=f"{settings.class_}: {summary}", provenance=ctx.provenance
    )
