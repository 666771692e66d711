"""`staging run`: the whole pipeline of phases against one app, ending in one verdict."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from staging.atomic import write_json
from staging.console import RunConsole
from staging.context import RunContext, RunOptions
from staging.phases import RUN_PHASES
from staging.phases.teardown import teardown
from staging.redact import Redactor
from staging.runner import RunOutcome, execute
from staging.verdict import build_verdict


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "run",
        help="run the app's worker and pipelines against throwaway services",
        description="Start Postgres and Temporal, run the app's real worker and pipelines "
        "with its real settings loading, and write a verdict.",
    )
    add_run_arguments(p)


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--project", type=Path, default=Path("."), help="dir with pyproject.toml")
    p.add_argument("--backend", choices=["auto", "docker", "process"], help="services backend")
    p.add_argument("--timeout", type=float, help="whole-run timeout in seconds")
    p.add_argument(
        "--pipeline",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this pipeline (repeatable)",
    )
    p.add_argument(
        "--keep-on-failure",
        action="store_true",
        help="leave services and worker running after a red run, to attach",
    )
    p.add_argument("--json", action="store_true", help="print only the verdict JSON")
    p.add_argument(
        "--record",
        type=Path,
        metavar="DIR",
        default=None,
        help="after a green run, save the workflow histories to DIR",
    )


def options_from_args(args: argparse.Namespace) -> RunOptions:
    overrides: dict[str, Any] = {}
    if args.backend:
        overrides["backend"] = args.backend
    if args.timeout:
        overrides["timeout"] = args.timeout
    return RunOptions(
        project=args.project,
        overrides=overrides,
        keep_on_failure=args.keep_on_failure,
        pipelines=list(args.pipeline),
        json=args.json,
        record_dir=args.record,
    )


def run(args: argparse.Namespace) -> int:
    return run_staging(options_from_args(args))


def run_staging(options: RunOptions) -> int:
    redactor = Redactor(scrubbers=[_scrub_dsn_fragments])
    console = RunConsole(redactor, quiet=options.json)
    ctx = RunContext(options=options, console=console, redactor=redactor)
    outcome = execute(ctx, RUN_PHASES, finish=_finish, teardown=_teardown)
    return outcome.exit_code


def _scrub_dsn_fragments(text: str) -> str:
    from staging.db_errors import scrub_dsn_fragments

    return scrub_dsn_fragments(text)


def _finish(ctx: RunContext, outcome: RunOutcome) -> None:
    if ctx.options.record_dir is not None and outcome.exit_code == 0:
        _record(ctx, ctx.options.record_dir)
    verdict = build_verdict(ctx, outcome)
    if ctx.run_dir is not None:
        write_json(ctx.run_dir / "verdict.json", verdict)
        write_json(ctx.run_dir / "notifications.json", verdict["notifications"])
        from staging.report import publish

        for line in publish(ctx, verdict):
            ctx.console.info(line)
    if ctx.options.json:
        with contextlib.suppress(OSError):  # a closed stdout: the verdict is on disk anyway
            sys.stdout.write(json.dumps(verdict, indent=2) + "\n")
            sys.stdout.flush()
    else:
        ctx.console.verdict(verdict)


def _record(ctx: RunContext, dest: Path) -> None:
    """Save the green run's workflow histories (before teardown) for the replay gate."""
    from staging.history_export import record_histories

    assert ctx.environment is not None
    temporal = ctx.environment.temporal
    saved = record_histories(
        temporal.address,
        temporal.namespace,
        dest,
        redactor=ctx.redactor,
        on_event=ctx.console.warn,
    )
    ctx.notes.append(f"recorded {len(saved)} workflow histories to {dest}")


def _teardown(ctx: RunContext, outcome: RunOutcome) -> None:
    took = teardown(ctx, outcome)
    if ctx.kept:
        from staging.keep import print_attach_info

        print_attach_info(ctx)
    else:
        ctx.console.info(f"teardown {took:.2f}s: nothing left running")
