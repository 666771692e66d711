"""Phase 3: the app as it would be deployed, with settings delivered as production does."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

from staging.config.render import capture_names, placeholder_values, render_env
from staging.context import RunContext
from staging.redact import is_secret_name
from staging.result import PhaseResult
from staging.workspace import TreeInfo, Workspace, deliver, hermetic_env, tree_hash

Prefetched = tuple[TreeInfo, Workspace]


def prefetch_workspace(ctx: RunContext) -> None:
    """Hash and copy the app on a thread while the services start; the phase collects it.

    Neither needs a service (only the settings delivered into the copy do), and both are
    git and file work the phase would otherwise do after the services are ready. A run
    that stops before the workspace phase removes the copy in its teardown.
    """
    assert ctx.loaded is not None and ctx.app_record is not None
    app_dir, parent = ctx.loaded.app_dir, ctx.app_record.workspace_parent

    def make() -> Prefetched:
        return tree_hash(app_dir), Workspace.create(app_dir, dest_root=parent)

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="workspace")
    future: Future[Prefetched] = pool.submit(make)
    pool.shutdown(wait=False)

    def discard() -> None:
        if ctx.background.pop("workspace", None) is future and future.exception() is None:
            future.result()[1].remove()

    ctx.background["workspace"] = future
    ctx.cleanups.append(discard)


def workspace_phase(ctx: RunContext) -> PhaseResult:
    assert ctx.loaded is not None and ctx.environment is not None and ctx.captures is not None
    assert ctx.app_record is not None
    loaded, cfg = ctx.loaded, ctx.loaded.config
    captures = {name: ctx.captures.url(name) for name in capture_names(cfg.env)}
    values = placeholder_values(ctx.environment.postgres, ctx.environment.temporal, captures)
    rendered = render_env(cfg.env, values, source=str(loaded.pyproject))
    for name, value in rendered.items():
        if is_secret_name(name):
            ctx.redactor.add(value)
    ctx.rendered_env = rendered
    prefetched: Future[Prefetched] | None = ctx.background.pop("workspace", None)
    if prefetched is not None:
        ctx.tree, ctx.workspace = prefetched.result()
    else:
        ctx.tree = tree_hash(loaded.app_dir)
        ctx.workspace = Workspace.create(loaded.app_dir, dest_root=ctx.app_record.workspace_parent)
    ctx.delivery = deliver(
        ctx.workspace, rendered, mode=cfg.settings.delivery, path=cfg.settings.path
    )
    ctx.app_env = hermetic_env(loaded.python, extra=ctx.delivery.env_vars)
    from staging.phases.replay import prefetch_replay

    prefetch_replay(ctx)
    for note in getattr(ctx.workspace, "notes", []):
        ctx.console.warn(note)
    return PhaseResult.passed(
        "workspace",
        summary=f"{len(ctx.workspace.files)} files · {ctx.delivery.channel}",
        tree=ctx.tree.hash,
        commit=ctx.tree.commit,
        dirty=ctx.tree.dirty,
        channel=ctx.delivery.channel,
        variables=sorted(rendered),
    )
