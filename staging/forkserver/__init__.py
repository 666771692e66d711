"""The app's interpreter, started ahead: app commands fork from it instead of starting cold.

`server.py` runs inside the app's interpreter (standalone); `client.py` is the harness
side. `start_for_run` starts one per run, with the libraries to import before any app
code runs; every app process of the run (probes, setup, worker, triggers) that it
accepts is forked from it, the others start the ordinary way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from staging.forkserver.client import (
    DEFAULT_PRELOAD,
    ForkedProcess,
    ForkServer,
    ForkServerUnavailable,
    ForkTarget,
    fork_target,
    try_fork,
)


def preload_for(app_dir: Path, extra: Sequence[str]) -> list[str]:
    """DEFAULT_PRELOAD + `extra`, minus names the app itself provides (it must win)."""
    names = list(dict.fromkeys([*DEFAULT_PRELOAD, *extra]))
    return [n for n in names if not _shadowed(app_dir, n.split(".")[0])]


def _shadowed(app_dir: Path, root: str) -> bool:
    return (app_dir / root).is_dir() or (app_dir / f"{root}.py").is_file()


def start_for_run(
    python: str,
    *,
    app_dir: Path,
    env: Mapping[str, str],
    cwd: Path,
    extra_preload: Sequence[str],
    log_path: Path,
) -> ForkServer | None:
    """A server for this run, or None when it cannot start (the run starts processes cold)."""
    try:
        return ForkServer.start(
            python, env=env, cwd=cwd, preload=preload_for(app_dir, extra_preload), log_path=log_path
        )
    except OSError:
        return None


__all__ = [
    "DEFAULT_PRELOAD",
    "ForkServer",
    "ForkServerUnavailable",
    "ForkTarget",
    "ForkedProcess",
    "fork_target",
    "preload_for",
    "start_for_run",
    "try_fork",
]
