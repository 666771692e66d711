"""`staging run`: the whole pipeline of phases against one app, ending in one verdict."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from staging.atomic import write_json
from staging.commands.console import RunConsole
from staging.context import ConfigDone, RunContext, RunOptions, ServicesDone
from staging.errors import StagingError
from staging.gate.shards import shard_argument
from staging.phases import run_phases
from staging.phases.teardown import teardown
from staging.redact import Redactor
from staging.runner import RunOutcome, execute
from staging.services.backends import backend_choices
from staging.services.backends import help_text as backend_help
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
    p.add_argument("--backend", choices=backend_choices(), help=backend_help())
    p.add_argument("--timeout", type=float, help="whole-run timeout in seconds")
    p.add_argument(
        "--pipeline",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this pipeline (repeatable)",
    )
    p.add_argument(
        "--shard",
        type=shard_argument,
        metavar="K/N",
        help="run shard K of N: a share of the pipelines balanced by their recorded "
        "durations; `staging gate` opens once the shards of a tree cover every pipeline",
    )
    p.add_argument(
        "--keep-on-failure",
        action="store_true",
        help="leave services and worker running after a red run, to attach",
    )
    p.add_argument("--json", action="store_true", help="print only the verdict JSON")
    p.add_argument(
        "--chaos",
        action="store_true",
        default=None,
        help="kill -9 the worker running each activity type once; the checks must still hold",
    )
    p.add_argument(
        "--rollout",
        action="store_true",
        default=None,
        help="rehearse the deploy: in-flight workflows of the last green tree finish on this one",
    )
    p.add_argument(
        "--record",
        type=Path,
        nargs="?",
        const=Path(".staging") / "histories",  # history_export.RECORD_DEFAULT, in the app
        metavar="DIR",
        default=None,
        help="after a green run, save the workflow histories to DIR (default: "
        ".staging/histories/ in the app, which leaves the deployed tree and the gate alone)",
    )


def options_from_args(args: argparse.Namespace) -> RunOptions:
    overrides: dict[str, Any] = {}
    if args.backend:
        overrides["backend"] = args.backend
    if args.timeout:
        overrides["timeout"] = args.timeout
    if getattr(args, "rollout", None):
        overrides["rollout.enabled"] = True
    if getattr(args, "chaos", None):
        overrides["chaos"] = True
    return RunOptions(
        project=args.project,
        overrides=overrides,
        keep_on_failure=args.keep_on_failure,
        pipelines=list(args.pipeline),
        json=args.json,
        record_dir=args.record,
        shard=getattr(args, "shard", None),
    )


def run(args: argparse.Namespace) -> int:
    return run_staging(options_from_args(args))


def run_staging(options: RunOptions) -> int:
    redactor = Redactor(scrubbers=[_scrub_dsn_fragments])
    console = RunConsole(redactor, quiet=options.json)
    ctx = RunContext(options=options, console=console, redactor=redactor)
    outcome = execute(ctx, run_phases(ctx), finish=_finish, teardown=_teardown)
    return outcome.exit_code


def _scrub_dsn_fragments(text: str) -> str:
    from staging.db_errors import scrub_dsn_fragments

    return scrub_dsn_fragments(text)


def _finish(ctx: RunContext, outcome: RunOutcome) -> RunOutcome | None:
    if ctx.options.record_dir is not None and outcome.exit_code == 0:
        try:
            _record(ctx, ctx.options.record_dir)
        except (StagingError, OSError) as exc:  # the run passed; only the recording failed
            ctx.notes.append(f"histories not recorded to {ctx.options.record_dir}: {exc}")
            ctx.console.warn(ctx.notes[-1])
    verdict = build_verdict(ctx, outcome)
    replaced: RunOutcome | None = None
    if ctx.run_dir is not None:
        path = ctx.run_dir / "verdict.json"
        try:
            write_json(path, verdict)
        except OSError as exc:
            # No verdict on disk: the run cannot vouch for the code, whatever it showed.
            replaced = _unwritable(outcome, str(exc.filename or path), exc)
            verdict = build_verdict(ctx, replaced)
            ctx.console.warn(f"not written: {path} and every report of this run")
        else:
            _publish(ctx, verdict)
    if ctx.options.json:
        with contextlib.suppress(OSError):  # a closed stdout: the verdict is on disk anyway
            sys.stdout.write(json.dumps(verdict, indent=2) + "\n")
            sys.stdout.flush()
    else:
        ctx.console.verdict(verdict)
    return replaced


def _publish(ctx: RunContext, verdict: dict[str, Any]) -> None:
    """The reports beside the verdict; one that cannot be written is named, never fatal."""
    notifications = ctx.need(ConfigDone).run_dir / "notifications.json"
    try:
        write_json(notifications, verdict["notifications"])
    except OSError as exc:
        ctx.console.warn(f"not written: {notifications} ({exc.strerror or exc})")
    from staging.report import publish

    try:
        lines = publish(ctx, verdict)
    except OSError as exc:
        lines = [f"not written: the reports in {ctx.run_dir} ({exc.strerror or exc})"]
    for line in lines:
        ctx.console.info(line)


def _unwritable(outcome: RunOutcome, path: str, exc: OSError) -> RunOutcome:
    from staging.result import Status
    from staging.runner import unwritable_diagnosis

    diagnosis = unwritable_diagnosis(path, exc)
    if outcome.diagnosis is not None:
        seen = f"the run itself ended as {outcome.diagnosis.failure_class.value}"
        diagnosis = dataclasses.replace(diagnosis, evidence=(seen, outcome.diagnosis.cause))
    return RunOutcome(Status.ABORTED, 2, outcome.results, diagnosis)


def _record(ctx: RunContext, dest: Path) -> None:
    """Save the green run's workflow histories (before teardown) for the replay gate."""
    from staging.history_export import record_histories, record_target, recorded_lines
    from staging.temporal.scope import RunScope

    temporal, loaded = ctx.need(ServicesDone).environment.temporal, ctx.need(ConfigDone).loaded
    target = record_target(loaded.app_dir, dest)
    saved = record_histories(
        temporal,
        target.path,
        scope=RunScope.of_run(loaded.config, temporal),
        redactor=ctx.redactor,
        on_event=ctx.console.warn,
    )
    ctx.notes.extend(recorded_lines(target, saved))


def _teardown(ctx: RunContext, outcome: RunOutcome) -> None:
    took = teardown(ctx, outcome)
    if ctx.kept:
        from staging.keep import print_attach_info

        print_attach_info(ctx)
    else:
        ctx.console.info(f"teardown {took:.2f}s: nothing left running")
