"""Phase 2: this run's own Postgres and Temporal, plus loopback capture sinks."""

from __future__ import annotations

import threading

from staging.capture import CaptureServer
from staging.config.render import capture_names
from staging.context import RunContext
from staging.result import PhaseResult
from staging.services.base import ServiceSpec
from staging.services.environment import Environment


def services_phase(ctx: RunContext) -> PhaseResult:
    assert ctx.loaded is not None
    cfg = ctx.loaded.config
    spec = ServiceSpec(
        run_id=ctx.run_id,
        database=cfg.postgres.database,
        user=cfg.postgres.user,
        namespace=cfg.temporal.namespace,
        postgres_image=cfg.postgres.image,
        temporal_image=cfg.temporal.image,
    )
    env = Environment.start(
        spec,
        backend=cfg.backend,
        on_event=ctx.console.info,
        ready_timeout=max(5.0, min(120.0, ctx.remaining())),
    )
    ctx.environment = env
    ctx.redactor.add(env.postgres.password)
    ctx.captures = CaptureServer.start(capture_names(cfg.env, cfg.process_env))
    # The versions go into the verdict; asking for them (`docker exec`, a `--version` run)
    # takes up to 0.6 s, so it happens beside the next phases instead of before them.
    threading.Thread(target=env.versions, name="service-versions", daemon=True).start()
    return PhaseResult.passed(
        "services",
        summary=(
            f"{env.backend_name} · postgres {env.postgres.host}:{env.postgres.port} · "
            f"temporal {env.temporal.address}"
        ),
        backend=env.backend_name,
        backend_reason=env.backend_reason,
    )
