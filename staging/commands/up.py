"""`staging up`: the run's services for local reproduction, until Ctrl-C (or detached).

Prints the endpoints (never the password) and writes them, password included, to
`.staging/up.json` (mode 600, git-ignored): that file is the local attach point.
"""

from __future__ import annotations

import argparse
import secrets
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from staging.config.load import load_config
from staging.errors import ConfigError
from staging.services.base import ServiceSpec
from staging.services.environment import Environment
from staging.services.select import CHOICES
from staging.up_file import UP_FILE, endpoints_document, write_up_file


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


def _print_endpoints(env: Environment, up_file: Path) -> None:
    pg, tp = env.postgres, env.temporal
    print(f"Postgres  {pg.psql_command()}")
    print(f"Temporal  {tp.address}  (namespace {tp.namespace})")
    if tp.ui_url:
        print(f"UI        {tp.ui_url}")
    for name, endpoint in env.generic.items():
        print(f"{name:<9} {endpoint.address}")
    print(f"Endpoints {up_file}  (includes the password and the postgresql:// URL)")
    sys.stdout.flush()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    # The run's own reading of the config (file < STAGING_* < --backend): `up` starts
    # exactly the services `staging run` would, or fails on the same config error.
    loaded = load_config(Path(args.project), cli={"backend": args.backend})
    project, cfg = loaded.project_dir, loaded.config
    up_file = project / ".staging" / UP_FILE
    if up_file.exists():
        raise ConfigError(
            f"{up_file} exists: services of an earlier `staging up` may still be running",
            hint=f"stop them first: staging down --project {project}",
        )
    # The run's own spec: the extra [[tool.staging.services]] come up too.
    spec = ServiceSpec.from_config(
        cfg, f"up-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
    )
    env = Environment.start(
        spec,
        cfg.backend,
        config=cfg,  # the attach backend's factory reads [tool.staging.attach]
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
