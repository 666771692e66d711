"""Phase 4: the app's own Settings class, loaded in the app's interpreter, field by field."""

from __future__ import annotations

from pathlib import Path

from staging.context import RunContext
from staging.preflight import analyse, provenance_table, run_probe
from staging.result import PhaseResult
from staging.workspace import strategy_for


def preflight_phase(ctx: RunContext) -> PhaseResult:
    assert ctx.loaded is not None and ctx.workspace is not None and ctx.delivery is not None
    assert ctx.environment is not None and ctx.captures is not None
    settings = ctx.loaded.config.settings
    if not settings.class_:
        return PhaseResult.skipped("preflight", "no [tool.staging.settings] class configured")
    report = run_probe(
        ctx.loaded.python,
        # Where the (first) worker runs: a relative env_file resolves from there.
        ctx.workspace.app / ctx.loaded.config.worker.cwd,
        ctx.app_env,
        settings.class_,
        settings.required,
        timeout=max(5.0, min(60.0, ctx.remaining())),
        redactor=ctx.redactor,
        forkserver=ctx.forkserver,
    )
    ctx.probe = report
    from staging.phases.workspace import check_origins

    # Before judging the settings: a shadowed settings module makes any verdict meaningless.
    shadowed = check_origins(ctx, "while loading the settings")
    if shadowed is not None:
        return PhaseResult.failed("preflight", shadowed)
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
        # The strategy itself, never its display string: the rules ask it why a
        # model_config would not read the channel.
        channel=ctx.delivery.strategy or strategy_for(ctx.delivery.mode, settings.path),
        staging_hosts=hosts,
        redactor=ctx.redactor,
        optional=settings.optional,
        config_file=_shown_path(ctx.loaded.pyproject),
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


def _shown_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
