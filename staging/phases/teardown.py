"""Teardown: stop and remove everything the run started, whatever happened.

Every step is independent: one that fails is noted and the rest still run, so a
broken worker stop never leaves a database behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from staging.context import RunContext
from staging.runner import RunOutcome


def teardown(ctx: RunContext, outcome: RunOutcome) -> float:
    began = time.monotonic()
    keep = ctx.options.keep_on_failure and outcome.exit_code == 1
    grace = ctx.loaded.config.worker.stop_grace if ctx.loaded else 5.0
    steps: list[tuple[str, Callable[[], object]]] = [
        ("background work", cleanup) for cleanup in ctx.cleanups
    ]
    if ctx.worker is not None and not keep:
        worker = ctx.worker
        steps.append(("worker", lambda: worker.stop(grace=grace)))
    if ctx.forkserver is not None:
        steps.append(("fork server", lambda: _close_forkserver(ctx)))
    if ctx.environment is not None and ctx.run_dir is not None:
        env, logs = ctx.environment, ctx.logs_dir
        steps.append(("service logs", lambda: env.save_logs(logs)))
    if not keep:
        if ctx.captures is not None:
            steps.append(("capture sinks", ctx.captures.stop))
        if ctx.environment is not None:
            steps.append(("services", ctx.environment.stop))
        if ctx.workspace is not None:
            steps.append(("workspace", ctx.workspace.remove))
        if ctx.app_record is not None:
            steps.append(("app record", ctx.app_record.close))
    for name, step in steps:
        try:
            step()
        except Exception as exc:  # keep going: the other resources still need stopping
            ctx.console.warn(f"teardown of {name} failed: {type(exc).__name__}: {exc}")
    if keep and ctx.environment is not None:
        from staging.keep import keep_environment

        try:
            keep_environment(ctx)
            ctx.kept = True
        except Exception as exc:
            ctx.console.warn(f"could not keep the environment: {type(exc).__name__}: {exc}")
            ctx.environment.stop()
    return time.monotonic() - began


def _close_forkserver(ctx: RunContext) -> None:
    assert ctx.forkserver is not None
    ctx.forkserver.close()
    if ctx.app_record is not None:
        ctx.app_record.untrack_pid(ctx.forkserver.pid)
