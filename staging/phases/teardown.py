"""Teardown: stop and remove everything the run started, whatever happened.

Every step is independent: one that fails is noted and the rest still run, so a
broken worker stop never leaves a database behind.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from staging.app_record import AppRecord
from staging.context import ConfigDone, RunContext, ServicesDone, WorkspaceDone
from staging.runner import RunOutcome

if TYPE_CHECKING:
    from staging.forkserver import ForkServer


def teardown(ctx: RunContext, outcome: RunOutcome) -> float:
    began = time.monotonic()
    keep = ctx.options.keep_on_failure and outcome.exit_code == 1
    config = ctx.get(ConfigDone)
    services = ctx.get(ServicesDone)
    done = ctx.get(WorkspaceDone)
    configs = config.loaded.config.workers if config else []
    steps: list[tuple[str, Callable[[], object]]] = [
        ("background work", cleanup) for cleanup in ctx.cleanups
    ]
    workers = ctx.workers or ([ctx.worker] if ctx.worker is not None else [])
    for i, worker in enumerate([] if keep else workers):
        grace = configs[i].stop_grace if i < len(configs) else 5.0
        steps.append(("worker", functools.partial(worker.stop, grace=grace)))
    if ctx.forkserver is not None:
        steps.append(("fork server", functools.partial(_close_forkserver, ctx, ctx.forkserver)))
    if services is not None and config is not None:
        env, logs = services.environment, config.logs_dir
        steps.append(("service logs", lambda: env.save_logs(logs)))
    if not keep:
        if services is not None:
            steps.append(("capture sinks", services.captures.stop))
            steps.append(("services", services.environment.stop))
        if done is not None:
            steps.append(("workspace", done.workspace.remove))
        if ctx.app_record is not None:
            record = ctx.app_record
            steps.append(("app record", lambda: _close_app_record(record)))
    for name, step in steps:
        try:
            step()
        except Exception as exc:  # keep going: the other resources still need stopping
            ctx.console.warn(f"teardown of {name} failed: {type(exc).__name__}: {exc}")
    if keep and services is not None:
        from staging.keep import keep_environment

        try:
            keep_environment(ctx)
            ctx.kept = True
        except Exception as exc:
            ctx.console.warn(f"could not keep the environment: {type(exc).__name__}: {exc}")
            services.environment.stop()
    return time.monotonic() - began


def _close_forkserver(ctx: RunContext, server: ForkServer) -> None:
    server.close()
    if ctx.app_record is not None:
        ctx.app_record.untrack_pid(server.pid)


def _close_app_record(record: AppRecord) -> None:
    """Stop any app process still recorded (started as an interrupt arrived), then forget."""
    from staging.services.sweep import sweep

    sweep(record.dir.parent, run_ids={record.run_id}, force=True)
    if record.dir.exists():
        record.close()
