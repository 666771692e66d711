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

from staging.errors import ConfigError
from staging.services.process_backend import ProcessBackend
from staging.services.select import docker_engine_status, docker_module
from staging.services.state import clear_detached

UP_FILE = Path(".staging") / "up.json"


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


def _docker_backend() -> Any | None:
    """The docker backend when an engine answers; its leftovers need it to be removed."""
    ok, _ = docker_engine_status()
    module = docker_module()
    return module.DockerBackend(client=None) if ok and not isinstance(module, str) else None


def _stop_run(backend_name: str, run_id: str) -> list[str]:
    backend: Any = ProcessBackend() if backend_name == "process" else _docker_backend()
    stop_run = getattr(backend, "stop_run", None)
    if not callable(stop_run):
        raise ConfigError(
            f"cannot stop run {run_id}: the {backend_name} backend is not available here",
            hint="start the Docker engine, then run `staging down` again",
        )
    removed: list[str] = stop_run(run_id)
    clear_detached(run_id)
    return removed


def _sweep_all() -> list[str]:
    removed = ProcessBackend().sweep(include_detached=True)
    docker = _docker_backend()
    if docker is not None:
        try:
            removed += docker.sweep(include_detached=True)
        except TypeError:  # a sweep that knows no detached runs
            removed += docker.sweep()
    return list(removed)


def run(args: argparse.Namespace) -> int:
    project = Path(args.project).resolve()
    up_file = project / UP_FILE
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
        removed += _stop_run(backend, run_id)
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
        removed += _sweep_all()
    if getattr(args, "prune", False):
        removed += ProcessBackend().prune()
    for line in removed:
        print(f"  {line}")
    if not removed:
        print("nothing left to remove", file=sys.stderr)
    return 0
