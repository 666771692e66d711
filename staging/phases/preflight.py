"""Phase 4: the app's own Settings class, loaded in the app's interpreter, field by field."""

from __future__ import annotations

from pathlib import Path

from staging.context import ConfigDone, PreflightDone, RunContext, ServicesDone, WorkspaceDone
from staging.preflight import analyse, provenance_table, run_probe
from staging.result import PhaseResult
from staging.workspace import strategy_for


def preflight_phase(ctx: RunContext) -> PhaseResult:
    loaded, services = ctx.need(ConfigDone).loaded, ctx.need(ServicesDone)
    done = ctx.need(WorkspaceDone)
    settings = loaded.config.settings
    if not settings.class_:
        return PhaseResult.skipped("preflight", "no [tool.staging.settings] class configured")
    report = run_probe(
        loaded.python,
        # Where the (first) worker runs: a relative env_file resolves from there.
        done.workspace.app / loaded.config.worker.cwd,
        done.app_env,
        settings.class_,
        settings.required,
        timeout=max(5.0, min(60.0, ctx.remaining())),
        redactor=ctx.redactor,
        forkserver=ctx.forkserver,
    )
    # The probe is the verdict's even when the settings are then judged broken; the
    # provenance only once no module was shadowed.
    ctx.put(PreflightDone(report, ()))
    from staging.phases.workspace import check_origins

    # Before judging the settings: a shadowed settings module makes any verdict meaningless.
    shadowed = check_origins(ctx, "while loading the settings")
    if shadowed is not None:
        return PhaseResult.failed("preflight", shadowed)
    provenance = provenance_table(report)
    ctx.put(PreflightDone(report, tuple(provenance)))
    hosts = {
        services.environment.postgres.host,
        services.environment.temporal.host,
        *services.captures.hosts(),
        "127.0.0.1",
        "localhost",
        "::1",
    }
    diagnosis = analyse(
        report,
        settings_class=settings.class_,
        required=settings.required,
        delivered=done.rendered_env,
        # The strategy itself, never its display string: the rules ask it why a
        # model_config would not read the channel.
        channel=done.delivery.strategy or strategy_for(done.delivery.mode, settings.path),
        staging_hosts=hosts,
        redactor=ctx.redactor,
        optional=settings.optional,
        config_file=_shown_path(loaded.pyproject),
    )
    if diagnosis is not None:
        return PhaseResult.failed("preflight", diagnosis, provenance=provenance)
    by_source: dict[str, int] = {}
    for row in provenance:
        by_source[row["source"]] = by_source.get(row["source"], 0) + 1
    summary = ", ".join(f"{n} from {s}" for s, n in sorted(by_source.items()))
    return PhaseResult.passed(
        "preflight", summary=f"{settings.class_}: {summary}", provenance=provenance
    )


def _shown_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
