"""`--keep-on-failure`: leave a red run's services and worker up, and say how to attach.

The environment is detached (a later run's sweep leaves it alone) and described in
`.staging/up.json` like `staging up --detach`, plus the kept worker and workspace, so
`staging down` stops all of it.
"""

from __future__ import annotations

from staging.context import ConfigDone, RunContext, ServicesDone
from staging.up_file import endpoints_document, write_up_file


def keep_environment(ctx: RunContext) -> None:
    """Detach what a red run started instead of stopping it."""
    environment, loaded = ctx.need(ServicesDone).environment, ctx.need(ConfigDone).loaded
    environment.detach()
    if ctx.app_record is not None:
        ctx.app_record.detach()
    document = endpoints_document(environment)
    document["kept"] = {
        "run_dir": str(ctx.run_dir),
        "worker_pid": ctx.worker.pid if ctx.worker is not None and ctx.worker.alive() else None,
        "worker_pids": [w.pid for w in ctx.workers if w.alive()],
        "workspace": str(ctx.workspace.root) if ctx.workspace is not None else None,
        "app_record": ctx.app_record.run_id if ctx.app_record is not None else None,
    }
    write_up_file(loaded.app_dir, document)


def print_attach_info(ctx: RunContext) -> None:
    environment, loaded = ctx.need(ServicesDone).environment, ctx.need(ConfigDone).loaded
    pg, tp = environment.postgres, environment.temporal
    say = ctx.console.info
    say("kept running after the failure (--keep-on-failure):")
    say(f"  postgres   {pg.psql_command()}")
    say(
        f"  temporal   {tp.address} namespace {tp.namespace}"
        + (f" · UI {tp.ui_url}" if tp.ui_url else "")
    )
    for worker in ctx.workers or ([ctx.worker] if ctx.worker is not None else []):
        if worker.alive():
            say(f"  worker     pid {worker.pid}, log {worker.log_path}")
    if ctx.workspace is not None:
        say(f"  workspace  {ctx.workspace.app}")
    say(f"  endpoints  {loaded.app_dir / '.staging' / 'up.json'}")
    say(f"  stop it    staging down --project {loaded.app_dir}")
