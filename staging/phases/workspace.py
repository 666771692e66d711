"""Phase 3: the app as it would be deployed, with settings delivered as production does."""

from __future__ import annotations

import posixpath
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from staging.config.load import LoadedConfig
from staging.config.render import capture_names, queue_values, render_env, run_values
from staging.context import (
    ConfigDone,
    PhaseOrderError,
    RunContext,
    ServicesDone,
    TreeHashed,
    WorkspaceDone,
)
from staging.errors import ConfigError
from staging.probes.origins import HOOK_DIR, origins_env, read_origins, shadowed_diagnosis
from staging.redact import is_secret_name
from staging.result import Diagnosis, PhaseResult
from staging.workspace import TreeInfo, Workspace, deliver, hermetic_env, tree_hash
from staging.workspace.roots import app_names, import_roots, project_name

Prefetched = tuple[TreeInfo, Workspace]


def prefetch_workspace(ctx: RunContext) -> None:
    """Hash and copy the app on a thread while the services start; the phase collects it.

    Neither needs a service (only the settings delivered into the copy do), and both are
    git and file work the phase would otherwise do after the services are ready. A run
    that stops before the workspace phase removes the copy in its teardown.
    """
    loaded = ctx.need(ConfigDone).loaded
    app_dir, parent = loaded.app_dir, _workspace_parent(ctx)
    settings_path = loaded.config.settings.path

    def make() -> Prefetched:
        return (
            tree_hash(app_dir, settings_path),
            Workspace.create(app_dir, dest_root=parent, settings_path=settings_path),
        )

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="workspace")
    future: Future[Prefetched] = pool.submit(make)
    pool.shutdown(wait=False)

    def discard() -> None:
        if ctx.background.pop("workspace", None) is future and future.exception() is None:
            future.result()[1].remove()

    ctx.background["workspace"] = future
    ctx.cleanups.append(discard)


def _workspace_parent(ctx: RunContext) -> Path:
    if ctx.app_record is None:
        raise PhaseOrderError("the config phase creates the app record before any workspace")
    return ctx.app_record.workspace_parent


def workspace_phase(ctx: RunContext) -> PhaseResult:
    loaded = ctx.need(ConfigDone).loaded
    services = ctx.need(ServicesDone)
    cfg = loaded.config
    names = capture_names(cfg.env, cfg.process_env)
    captures = {name: services.captures.url(name) for name in names}
    env = services.environment
    queues = queue_values(cfg.worker.task_queue, cfg.task_queues())
    values = run_values(env.placeholders(), captures, queues)  # every service, by its kind
    rendered = render_env(cfg.env, values, source=str(loaded.pyproject))
    process_env = render_env(
        cfg.process_env, values, source=str(loaded.pyproject), table="process_env"
    )
    for name, value in {**rendered, **process_env}.items():
        if is_secret_name(name):
            # Whole forms only: a literal from the pyproject ("staging-fake-token") is no
            # secret worth blanking every "stag" of the output for; values built on the
            # password (a DSN) are masked whole anyway, the password itself by fragment.
            ctx.redactor.add(value, fragments=False)
    prefetched: Future[Prefetched] | None = ctx.background.pop("workspace", None)
    if prefetched is not None:
        tree, workspace = prefetched.result()
    else:
        tree = tree_hash(loaded.app_dir, cfg.settings.path)
        workspace = Workspace.create(
            loaded.app_dir, dest_root=_workspace_parent(ctx), settings_path=cfg.settings.path
        )
    ctx.put(TreeHashed(tree))
    try:
        done = _deliver_into(loaded, workspace, rendered, process_env)
    except BaseException:
        workspace.remove()  # not handed on yet, so teardown would not know to remove it
        raise
    ctx.put(done)
    delivery = done.delivery
    roots = import_roots(loaded.app_dir, cfg.python_path)
    from staging.phases.replay import prefetch_replay

    prefetch_replay(ctx)
    for note in getattr(workspace, "notes", []):
        ctx.console.warn(note)
    return PhaseResult.passed(
        "workspace",
        summary=f"{len(workspace.files)} files · {delivery.channel}",
        tree=tree.hash,
        commit=tree.commit,
        dirty=tree.dirty,
        channel=delivery.channel,
        variables=sorted(rendered),
        process_variables=sorted(process_env),
        import_roots=list(roots.roots),
        import_roots_from=roots.source,
    )


def _deliver_into(
    loaded: LoadedConfig,
    workspace: Workspace,
    rendered: dict[str, str],
    process_env: dict[str, str],
) -> WorkspaceDone:
    """The settings delivered into the copy, its paths checked, the app's environment built."""
    cfg = loaded.config
    delivery = deliver(workspace, rendered, mode=cfg.settings.delivery, path=cfg.settings.path)
    check_cwds(loaded, workspace.app)
    origins_dir = workspace.root / "origins"
    app_env = app_process_env(loaded, workspace, {**delivery.env_vars, **process_env}, origins_dir)
    return WorkspaceDone(workspace, delivery, rendered, app_env, origins_dir)


def app_process_env(
    loaded: LoadedConfig, workspace: Workspace, variables: dict[str, str], origins_dir: Path
) -> dict[str, str]:
    """The environment of every app process: hermetic, the workspace's import roots first on
    PYTHONPATH, then staging's start-up hook recording module origins into `origins_dir`.

    `variables`: the delivered settings variables plus `[tool.staging.process_env]` (the
    model forbids a name in both).
    """
    roots = import_roots(loaded.app_dir, loaded.config.python_path)
    origins_dir.mkdir(exist_ok=True)
    names = app_names(loaded.app_dir, roots, command_dirs(loaded))
    watch = origins_env(origins_dir, names, home=workspace.app)
    return hermetic_env(
        loaded.python,
        extra={**variables, **watch},
        python_path=[*roots.under(workspace.app), HOOK_DIR],
    )


def command_dirs(loaded: LoadedConfig) -> set[str]:
    """Directories the app's commands put first on their path: each cwd, each script's dir."""
    cfg = loaded.config
    dirs: set[str] = set()
    for cwd, command in [
        *((w.cwd, w.command) for w in cfg.workers),
        *((s.cwd, s.command) for s in cfg.setup),
        *((p.cwd, p.command or []) for p in cfg.pipelines),
    ]:
        dirs.add(cwd)
        script = next((a for a in command[1:] if a.endswith(".py")), None)
        if command and command[0] in ("python", "python3") and script is not None:
            dirs.add(posixpath.normpath(posixpath.join(cwd, posixpath.dirname(script))))
    return {d for d in dirs if not (d == ".." or d.startswith(("../", "/")))}


def check_cwds(loaded: LoadedConfig, app: Path) -> None:
    """Every `cwd` and `python_path` entry names a directory of the deployed tree, inside it
    (symlinks resolved)."""
    cfg = loaded.config
    single = loaded.sources.get("workers", "default") == "default"
    keys = [("worker" if single else f"workers[{i}]", w.cwd) for i, w in enumerate(cfg.workers)]
    keys += [(f"setup[{i}]", s.cwd) for i, s in enumerate(cfg.setup)]
    keys += [(f"pipelines[{i}]", p.cwd) for i, p in enumerate(cfg.pipelines)]
    keys += [(f"python_path[{i}]", r) for i, r in enumerate(cfg.python_path or [])]
    base = app.resolve()
    for key, cwd in keys:
        target = (app / cwd).resolve()
        inside = target == base or base in target.parents
        if inside and target.is_dir():
            continue
        shown = key if key.startswith("python_path") else f"{key}.cwd"
        raise ConfigError(
            f"tool.staging.{shown} in {loaded.pyproject}: "
            + ("it leaves the app dir" if not inside else "no such directory in the deployed tree"),
            expected=f"a directory inside the app dir {loaded.app_dir}, relative to it",
            observed=f"{cwd!r} -> {target if not inside else loaded.app_dir / cwd}",
            hint="fix the path, or commit the directory (git-ignored files are not deployed, "
            "so staging does not copy them)",
        )


def check_origins(ctx: RunContext, when: str) -> Diagnosis | None:
    """`workspace.shadowed` when an app process imported an app module from outside the copy."""
    loaded, done = ctx.need(ConfigDone).loaded, ctx.need(WorkspaceDone)
    return shadowed_diagnosis(
        read_origins(done.origins_dir),
        home=done.workspace.app,
        checkout=loaded.app_dir,
        python=loaded.python,
        when=when,
        project=project_name(loaded.app_dir),
    )
