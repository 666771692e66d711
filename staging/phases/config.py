"""Phase 1: `[tool.staging]` + `STAGING_*` + CLI flags into one validated model.

It also starts the app's interpreter ahead (the fork server, `staging.forkserver`): first
from a draft of the config, so its imports overlap validation's, then checked against
the validated config and replaced when the draft guessed wrong.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from staging.app_record import AppRecord
from staging.config.draft import draft_prestart
from staging.config.table import StagingTable, read_staging_table
from staging.context import ConfigDone, PhaseOrderError, RunContext
from staging.errors import ConfigError
from staging.result import PhaseResult
from staging.state import ensure_state_dir


def config_phase(ctx: RunContext) -> PhaseResult:
    ctx.app_record = AppRecord.create(ctx.run_id)
    # The file is read once: the draft and the validation share the table.
    source: Path | StagingTable = ctx.options.project
    with contextlib.suppress(ConfigError):  # load_config meets the same error and says it
        source = read_staging_table(ctx.options.project)
    draft = draft_prestart(source)
    if draft is not None:
        _prestart(ctx, draft.python, draft.app_dir, draft.preload)
    from staging.config.load import load_config  # pydantic: imported while the server starts

    try:
        loaded = load_config(source, cli=ctx.options.overrides)
    except BaseException:
        _discard_prestart(ctx)  # no run dir for a config that does not load: no stray log
        raise
    # Handed on at once, not when the phase passes: a run refused below (an unknown
    # --pipeline) still writes its verdict into its run dir.
    done = ConfigDone(loaded, _run_dir(ctx, loaded.app_dir))
    ctx.put(done)
    done.logs_dir.mkdir(parents=True, exist_ok=True)
    cfg = loaded.config
    selected = [p.name for p in cfg.pipelines]
    unknown = [n for n in ctx.options.pipelines if n not in selected]
    if unknown:
        raise ConfigError(
            f"--pipeline {unknown[0]!r} is not defined in {loaded.pyproject}",
            expected=f"one of {', '.join(selected) or '(no pipelines configured)'}",
            observed=", ".join(unknown),
            hint="check the [[tool.staging.pipelines]] names",
        )
    if ctx.options.shard is not None:  # --shard K/N: the run restricts itself to its share
        from staging.gate.durations import resolve_shard, shard_note

        shard = resolve_shard(
            ctx.options.shard,
            loaded.app_dir,
            selected,
            requested=ctx.options.pipelines,
            pyproject=loaded.pyproject,
        )
        ctx.options.shard, ctx.options.pipelines = shard, list(shard.pipelines)
        ctx.notes.append(shard_note(shard))
    _check_preload(loaded.python, loaded.app_dir, list(cfg.preload), loaded.pyproject)
    _settle_prestart(ctx, done)
    from staging.shared_venv import shared_venv

    shared = shared_venv(loaded.python)
    if shared is not None:
        ctx.console.info(shared.describe())
    return PhaseResult.passed(
        "config",
        summary=f"{loaded.pyproject} · {len(cfg.pipelines)} pipeline(s) · python {loaded.python}"
        + (f" (found {loaded.python_found})" if loaded.python_found else ""),
        pyproject=str(loaded.pyproject),
        sources=loaded.sources,
    )


# Run in the app's interpreter: is each module importable from the app's root? find_spec
# imports only a dotted name's parents, so this costs an interpreter start, not the imports.
_FIND_SPECS = """
import importlib.util, json, sys
sys.path.insert(0, sys.argv[1])
missing = {}
for name in sys.argv[2:]:
    try:
        if importlib.util.find_spec(name) is None:
            missing[name] = "ModuleNotFoundError: No module named " + repr(name)
    except Exception as exc:
        missing[name] = type(exc).__name__ + ": " + str(exc)
print(json.dumps(missing))
"""


def _check_preload(python: str, app_dir: Path, preload: list[str], pyproject: Path) -> None:
    """A `preload` entry that cannot be imported is a config error, named now, not ignored."""
    if not preload:
        return
    import json
    import subprocess

    from staging.workspace.hermetic import hermetic_env

    try:
        done = subprocess.run(
            [python, "-c", _FIND_SPECS, str(app_dir), *preload],
            cwd=app_dir,
            env=hermetic_env(python),
            capture_output=True,
            text=True,
            timeout=60,
        )
        missing: dict[str, str] = json.loads(done.stdout or "{}") if done.returncode == 0 else {}
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return  # the interpreter itself is judged where it is used, with its own diagnosis
    if missing:
        name = next(iter(missing))
        raise ConfigError(
            f"preload module {name!r} ([tool.staging] preload in {pyproject}) does not "
            f"import in {python}",
            expected=f"every preload entry importable by {python} from {app_dir}",
            observed="; ".join(f"{n}: {w}" for n, w in missing.items()),
            hint=f"install it into that interpreter, fix the name, or remove {name!r} from "
            "`preload`",
        )


def _run_dir(ctx: RunContext, app_dir: Path) -> Path:
    return ensure_state_dir(app_dir) / "runs" / ctx.run_id


def _prestart(ctx: RunContext, python: str, app_dir: Path, preload: tuple[str, ...]) -> None:
    """Start the app's interpreter now, so its imports overlap the services' start."""
    from staging.forkserver import start_for_run
    from staging.workspace.hermetic import hermetic_env

    record = ctx.app_record
    if record is None:
        raise PhaseOrderError("the config phase starts the fork server after its app record")
    run_dir = _run_dir(ctx, app_dir)
    server = start_for_run(
        python,
        app_dir=app_dir,
        env=hermetic_env(python),
        cwd=run_dir,
        extra_preload=preload,
        log_path=run_dir / "logs" / "forkserver.log",
    )
    if server is not None:
        ctx.forkserver = server
        record.track_pid(server.pid, "forkserver")


def _settle_prestart(ctx: RunContext, done: ConfigDone) -> None:
    """Keep the server the draft started only if it is the one the validated config asks for."""
    from staging.forkserver import preload_for

    loaded, server = done.loaded, ctx.forkserver
    wanted = (loaded.python, preload_for(loaded.app_dir, loaded.config.preload))
    if server is not None and (not loaded.config.prestart or server.identity != wanted):
        _discard_prestart(ctx)
    if loaded.config.prestart and ctx.forkserver is None:
        _prestart(ctx, loaded.python, loaded.app_dir, tuple(loaded.config.preload))


def _discard_prestart(ctx: RunContext) -> None:
    """Stop the draft's server; remove its run dir unless it is this run's."""
    server = ctx.forkserver
    if server is None:
        return
    server.close()
    if ctx.app_record is not None:
        ctx.app_record.untrack_pid(server.pid)
    ctx.forkserver = None
    if server.cwd != ctx.run_dir:
        shutil.rmtree(server.cwd, ignore_errors=True)
