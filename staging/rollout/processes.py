"""App processes of the rollout: the old tree's, started in its own workspace, and the stop
a platform does (Fly.io, Kubernetes): SIGTERM, a grace period, SIGKILL.

A worker is frozen (SIGSTOP) at the swap point so the workflow stays mid-flight while the
new worker starts: the example's whole pipeline takes less time than a worker's start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from staging.context import ConfigDone, RunContext
from staging.process import ManagedProcess
from staging.workspace import Workspace, resolve_command


def spawn_in(
    ctx: RunContext,
    workspace: Workspace,
    env: dict[str, str],
    name: str,
    command: list[str],
    *,
    role: str,
    cwd: str = ".",
) -> ManagedProcess:
    """`ctx.spawn`, but in another workspace with its own environment."""
    proc = ManagedProcess.start(
        name,
        resolve_command(command, ctx.need(ConfigDone).loaded.python),
        cwd=Path(workspace.app) / cwd,
        env=env,
        log_path=ctx.logs_dir / f"{name}.log",
        redactor=ctx.redactor,
        forkserver=ctx.forkserver,
    )
    if ctx.app_record is not None:
        ctx.app_record.track(proc, role)
    return proc


def _group(proc: ManagedProcess, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def freeze(procs: list[ManagedProcess]) -> None:
    for proc in procs:
        _group(proc, signal.SIGSTOP)


def platform_stop(ctx: RunContext, procs: list[ManagedProcess], grace: float) -> list[str]:
    """SIGTERM all of `procs` (woken if frozen), SIGKILL what is left after `grace` seconds.

    Returns one line per process saying how it ended.
    """
    for proc in procs:
        _group(proc, signal.SIGTERM)
        _group(proc, signal.SIGCONT)  # a stopped process handles its SIGTERM once continued
    deadline = time.monotonic() + grace
    while any(p.alive() for p in procs) and time.monotonic() < deadline:
        time.sleep(0.02)
    lines = []
    for proc in procs:
        killed = proc.alive()
        proc.stop(grace=0)
        ctx.reap(proc)
        how = f"SIGKILLed after {grace:g}s" if killed else f"exited (code {proc.returncode})"
        lines.append(f"{proc.name} (pid {proc.pid}): SIGTERM, {how}")
    return lines
