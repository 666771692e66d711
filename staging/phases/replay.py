"""Phase: recorded workflow histories must still replay against the code about to deploy.

Runs after the settings preflight and before the worker starts: it needs no services,
only the workspace, the app's interpreter and the app's hermetic environment (the app's
modules may read settings at import time, exactly as the worker's do).

The probe (an interpreter importing temporalio and the app: seconds) is started as soon
as the workspace exists, so it runs while the preflight does; this phase collects it.
Results are still reported in phase order, and a run that stops earlier cancels it.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor

from staging.context import ConfigDone, RunContext, WorkspaceDone
from staging.replay import (
    diagnose,
    find_histories,
    history_rows,
    replay_notes,
    run_replay_probe,
)
from staging.replay.probe import ReplayReport
from staging.result import PhaseResult


def _replay(ctx: RunContext, cancel: threading.Event | None = None) -> ReplayReport:
    loaded, done = ctx.need(ConfigDone).loaded, ctx.need(WorkspaceDone)
    cfg = loaded.config
    files = find_histories(loaded.app_dir, cfg.replay.histories, pyproject=loaded.pyproject)
    return run_replay_probe(
        loaded.python,
        done.workspace.app,
        done.app_env,
        files,
        workflows=cfg.replay.workflows,
        worker_command=cfg.worker.command,
        timeout=max(10.0, min(180.0, ctx.remaining())),
        redactor=ctx.redactor,
        cancel=cancel,
        forkserver=ctx.forkserver,
    )


def prefetch_replay(ctx: RunContext) -> None:
    """Start the replay probe in the background; `replay_phase` collects its report."""
    if not ctx.need(ConfigDone).loaded.config.replay.histories:
        return
    cancel = threading.Event()
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="replay")
    future: Future[ReplayReport] = pool.submit(_replay, ctx, cancel)
    pool.shutdown(wait=False)

    def stop() -> None:
        cancel.set()
        future.exception()  # wait for the probe's process group to be gone

    ctx.background["replay"] = future
    ctx.cleanups.append(stop)


def replay_phase(ctx: RunContext) -> PhaseResult:
    config = ctx.need(ConfigDone)
    loaded, cfg = config.loaded, config.loaded.config
    if not cfg.replay.histories:
        return PhaseResult.skipped("replay", "no [tool.staging.replay] histories configured")
    prefetched: Future[ReplayReport] | None = ctx.background.pop("replay", None)
    report = prefetched.result() if prefetched is not None else _replay(ctx)
    if report.stderr_tail:
        (config.logs_dir / "replay.log").write_text(report.stderr_tail + "\n", encoding="utf-8")
    rows = history_rows(report, app_dir=loaded.app_dir)
    diagnosis = diagnose(report, app_dir=loaded.app_dir, worker_command=cfg.worker.command)
    if diagnosis is not None:
        return PhaseResult.failed("replay", diagnosis, histories=rows)
    for note in replay_notes(report, app_dir=loaded.app_dir):
        ctx.notes.append(f"replay: {note}")
        ctx.console.warn(note)
    types = sorted({r["workflow_type"] for r in rows if r["workflow_type"]})
    count = f"{len(rows)} history" if len(rows) == 1 else f"{len(rows)} histories"
    return PhaseResult.passed(
        "replay",
        summary=f"{count} replay against {', '.join(types)} ({report.runner})",
        histories=rows,
        workflows=report.workflows,
        discovery=report.discovery,
    )
