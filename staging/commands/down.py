"""`staging down`: stop what `staging up` started; `--all` also removes orphans of this host.

`--prune` also removes the process backend's caches that no live run uses (binary mirror,
template clusters: rebuilt on demand), for a state dir that filled its disk.

Never touches a live run: without `--all` only the run named in `.staging/up.json` is
stopped; `--all` adds every run whose owner process is gone, and detached `up` runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from staging.config.load import load_config
from staging.errors import ConfigError, StagingError
from staging.services.backends import AUTO, BackendOptions, get_backend, local_backends
from staging.services.base import Backend
from staging.services.process_backend import ProcessBackend
from staging.services.state import clear_detached
from staging.state import STATE_DIRNAME
from staging.up_file import UP_FILE


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "down",
        help="stop the services of `staging up`; --all also removes leftovers of dead runs",
    )
    p.add_argument("--project", type=Path, default=Path("."), help="dir with pyproject.toml")
    p.add_argument(
        "--all",
        action="store_true",
        help="also stop every run of this host whose owner is gone, and detached `up` runs",
    )
    p.add_argument(
        "--prune",
        action="store_true",
        help="also remove the process backend's caches (binary mirror, template clusters) "
        "that no live run uses; they are rebuilt when needed",
    )


def _project_config(project: Path | None) -> Any | None:
    """The project's config, for backends whose resources only it locates (`attach`)."""
    if project is None:
        return None
    try:
        return load_config(project).config
    except StagingError:  # no project here, or one that does not load: nothing to attach to
        return None


def _backend(name: str, project: Path | None) -> Backend:
    """The registered backend `name`, able to reach its resources from here."""
    info = get_backend(name)
    why = info.unavailable()
    if why is not None:
        raise ConfigError(
            f"cannot stop the run: the {name} backend is not reachable here",
            expected=f"the {name} backend ({info.description})",
            observed=why,
            hint="start what it needs (the Docker engine for docker), then run `staging down` "
            "again",
        )
    config = None if info.local else _project_config(project)
    return info.create(BackendOptions(config=config))


def _stop_run(backend_name: str, run_id: str, project: Path | None = None) -> list[str]:
    removed = _backend(backend_name, project).stop_run(run_id)
    clear_detached(run_id)
    return removed


def _sweep_all(project: Path | None = None) -> list[str]:
    """Every local backend that can be reached (no Docker engine: nothing of docker to
    find), then the project's own non-local backend (`attach`: dead runs' databases...)."""
    removed: list[str] = []
    for info in local_backends():
        if info.unavailable() is None:
            removed += info.create().sweep(include_detached=True)
    config = _project_config(project)
    if config is not None and config.backend != AUTO and not get_backend(config.backend).local:
        backend = get_backend(config.backend).create(BackendOptions(config=config))
        removed += backend.sweep(include_detached=True)
    return removed


def run(args: argparse.Namespace) -> int:
    project = Path(args.project).resolve()
    up_file = project / STATE_DIRNAME / UP_FILE
    removed: list[str] = []
    if up_file.exists():
        try:
            document = json.loads(up_file.read_text())
            run_id, backend = str(document["run_id"]), str(document["backend"])
        except (ValueError, KeyError) as exc:
            raise ConfigError(
                f"{up_file} is not an up.json written by `staging up`",
                observed=f"{type(exc).__name__}: {exc}",
                hint=f"delete {up_file} and run `staging down --all`",
            ) from exc
        removed += _stop_run(backend, run_id, project)
        kept = document.get("kept") or {}
        if kept.get("app_record"):
            # the worker and workspace a `run --keep-on-failure` left running
            removed += _stop_run("process", str(kept["app_record"]))
        up_file.unlink()
        print(f"stopped run {run_id} ({backend})")
    elif not (args.all or getattr(args, "prune", False)):
        print(f"nothing to stop: no {up_file} (use --all for leftovers of dead runs)")
        return 0
    if args.all:
        removed += _sweep_all(project)
    if getattr(args, "prune", False):
        removed += ProcessBackend().prune()
    for line in removed:
        print(f"  {line}")
    if not removed:
        print("nothing left to remove", file=sys.stderr)
    return 0
