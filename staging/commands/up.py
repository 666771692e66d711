"""`staging up`: the run's services for local reproduction, until Ctrl-C (or detached).

Prints the endpoints (never the password) and writes them, password included, to
`.staging/up.json` (mode 600, git-ignored): that file is the local attach point.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from staging.errors import ConfigError
from staging.services.base import ServiceSpec, owner_id
from staging.services.environment import Environment
from staging.services.select import CHOICES
from staging.state import ensure_state_dir

UP_FILE = "up.json"


@dataclass(frozen=True)
class ServicesConfig:
    backend: str = "auto"
    database: str = "app"
    user: str = "app"
    namespace: str = "default"
    postgres_image: str = "postgres:16-alpine"
    temporal_image: str = "temporalio/temporal:latest"


def read_services_config(project: Path) -> ServicesConfig:
    """The services part of `[tool.staging]`; the full config loader supersedes this later."""
    pyproject = project / "pyproject.toml"
    try:
        table = tomllib.loads(pyproject.read_text()).get("tool", {}).get("staging", {})
    except FileNotFoundError:
        table = {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{pyproject} is not valid TOML",
            observed=str(exc),
            hint="fix the syntax error at the position shown",
        ) from exc
    pg, tp, defaults = table.get("postgres", {}), table.get("temporal", {}), ServicesConfig()
    return ServicesConfig(
        backend=str(table.get("backend", defaults.backend)),
        database=str(pg.get("database", defaults.database)),
        user=str(pg.get("user", defaults.user)),
        namespace=str(tp.get("namespace", defaults.namespace)),
        postgres_image=os.environ.get("STAGING_POSTGRES_IMAGE")
        or str(pg.get("image", defaults.postgres_image)),
        temporal_image=os.environ.get("STAGING_TEMPORAL_IMAGE")
        or str(tp.get("image", defaults.temporal_image)),
    )


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "up",
        help="start Postgres and Temporal for local use; print and save their endpoints",
        description="Start the services a staging run uses and keep them until Ctrl-C "
        "(or leave them running with --detach; stop them with `staging down`).",
    )
    p.add_argument("--project", type=Path, default=Path("."), help="dir with pyproject.toml")
    p.add_argument("--backend", choices=CHOICES, default=None, help="default: [tool.staging]")
    p.add_argument("--detach", action="store_true", help="leave the services running and exit")
    p.add_argument("--timeout", type=float, default=60, help="seconds to wait for readiness")


def endpoints_document(env: Environment) -> dict[str, Any]:
    pg, tp = env.postgres, env.temporal
    return {
        "run_id": env.spec.run_id,
        "backend": env.backend_name,
        "backend_reason": env.backend_reason,
        "owner": owner_id(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "postgres": {
            "host": pg.host,
            "port": pg.port,
            "user": pg.user,
            "password": pg.password,
            "database": pg.database,
            "url": pg.url,
        },
        "temporal": {
            "host": tp.host,
            "port": tp.port,
            "address": tp.address,
            "namespace": tp.namespace,
            "ui_url": tp.ui_url,
        },
    }


def write_up_file(project: Path, document: dict[str, Any]) -> Path:
    path = ensure_state_dir(project) / UP_FILE
    # Created 0600 from the first byte: the password must never be world-readable.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(document, f, indent=2)
    path.chmod(0o600)
    return path


def _print_endpoints(env: Environment, up_file: Path) -> None:
    pg, tp = env.postgres, env.temporal
    print(f"Postgres  {pg.psql_command()}")
    print(f"Temporal  {tp.address}  (namespace {tp.namespace})")
    if tp.ui_url:
        print(f"UI        {tp.ui_url}")
    print(f"Endpoints {up_file}  (includes the password and the postgresql:// URL)")
    sys.stdout.flush()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    project = Path(args.project).resolve()
    up_file = project / ".staging" / UP_FILE
    if up_file.exists():
        raise ConfigError(
            f"{up_file} exists: services of an earlier `staging up` may still be running",
            hint=f"stop them first: staging down --project {project}",
        )
    cfg = read_services_config(project)
    spec = ServiceSpec(
        run_id=f"up-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}",
        database=cfg.database,
        user=cfg.user,
        namespace=cfg.namespace,
        postgres_image=cfg.postgres_image,
        temporal_image=cfg.temporal_image,
    )
    env = Environment.start(
        spec,
        args.backend or cfg.backend,
        on_event=lambda message: print(f"  {message}", file=sys.stderr),
        ready_timeout=args.timeout,
        ui=True,
    )
    detached = False
    try:
        _print_endpoints(env, write_up_file(project, endpoints_document(env)))
        if args.detach:
            env.detach()
            detached = True
            print(f"Detached. Stop with: staging down --project {project}")
            return 0
        # The handler goes in before "Running" is printed: whoever waits for that line
        # may send SIGTERM at once.
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            # Inside the try: the signal may land while the flush is still returning.
            print("Running; Ctrl-C stops and removes the services.")
            sys.stdout.flush()
            while True:
                signal.pause()
        except KeyboardInterrupt:
            return 0
        finally:
            signal.signal(signal.SIGTERM, previous)
    finally:
        if not detached:
            seconds = env.stop()
            up_file.unlink(missing_ok=True)
            print(f"Stopped in {seconds:.2f}s.", file=sys.stderr)
