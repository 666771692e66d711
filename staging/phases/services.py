"""Phase 2: this run's own Postgres and Temporal, plus loopback capture sinks."""

from __future__ import annotations

import threading

from staging.capture import CaptureServer
from staging.config.render import capture_names
from staging.context import ConfigDone, RunContext, ServicesDone
from staging.result import PhaseResult
from staging.services.base import ServiceSpec
from staging.services.environment import Environment


def services_phase(ctx: RunContext) -> PhaseResult:
    cfg = ctx.need(ConfigDone).loaded.config
    spec = ServiceSpec.from_config(cfg, ctx.run_id)  # with [[tool.staging.services]]
    env = Environment.start(
        spec,
        backend=cfg.backend,
        config=cfg,  # the attach backend's factory reads [tool.staging.attach]
        on_event=ctx.console.info,
        ready_timeout=max(5.0, min(120.0, ctx.remaining())),
    )
    ctx.redactor.add(env.postgres.password)
    for secret in env.temporal.secrets():  # an attached cluster's API key, header values
        ctx.redactor.add(secret)
    try:
        captures = CaptureServer.start(capture_names(cfg.env, cfg.process_env))
    except BaseException:
        env.stop()  # not handed on yet, so teardown would not know to stop it
        raise
    ctx.put(ServicesDone(env, captures))
    # The versions go into the verdict; asking for them (`docker exec`, a `--version` run)
    # takes up to 0.6 s, so it happens beside the next phases instead of before them.
    threading.Thread(target=env.versions, name="service-versions", daemon=True).start()
    return PhaseResult.passed(
        "services",
        summary=(
            f"{env.backend_name} · postgres {env.postgres.host}:{env.postgres.port} · "
            f"temporal {env.temporal.address}"
            + "".join(f" · {name} {ep.address}" for name, ep in env.generic.items())
        ),
        backend=env.backend_name,
        backend_reason=env.backend_reason,
    )
