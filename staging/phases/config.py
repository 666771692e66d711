"""Phase 1: `[tool.staging]` + `STAGING_*` + CLI flags into one validated model."""

from __future__ import annotations

from staging.config.load import load_config
from staging.context import RunContext
from staging.result import PhaseResult
from staging.state import ensure_state_dir


def config_phase(ctx: RunContext) -> PhaseResult:
    loaded = load_config(ctx.options.project, cli=ctx.options.overrides)
    ctx.loaded = loaded
    ctx.run_dir = ensure_state_dir(loaded.app_dir) / "runs" / ctx.run_id
    ctx.logs_dir.mkdir(parents=True, exist_ok=True)
    cfg = loaded.config
    selected = [p.name for p in cfg.pipelines]
    unknown = [n for n in ctx.options.pipelines if n not in selected]
    if unknown:
        from staging.errors import ConfigError

        raise ConfigError(
            f"--pipeline {unknown[0]!r} is not defined in {loaded.pyproject}",
            expected=f"one of {', '.join(selected) or '(no pipelines configured)'}",
            observed=", ".join(unknown),
            hint="check the [[tool.staging.pipelines]] names",
        )
    return PhaseResult.passed(
        "config",
        summary=f"{loaded.pyproject} · {len(cfg.pipelines)} pipeline(s) · python {loaded.python}",
        pyproject=str(loaded.pyproject),
        sources=loaded.sources,
    )
