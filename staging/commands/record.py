"""`staging record [--into-app [DIR] | --to DIR]`: a staging run that saves its histories.

Histories live in the run's throwaway Temporal namespace, which teardown removes, so
they are fetched at the end of a green run: this is `staging run --record` with the
destination chosen here. By default they go to `.staging/histories/` in the app, which
is not deployed, so recording leaves the tree hash (and the gate the run just opened)
alone. `--into-app` writes them where `[tool.staging.replay] histories` looks (or
`tests/histories`), inside the app: that changes the deployed tree, so the gate stays
closed until staging runs on it again. Commit them and rerun: the next change is then
replayed against them before it can deploy.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from staging.commands.run import run_staging
from staging.config.load import LoadedConfig, load_config
from staging.context import RunOptions
from staging.history_export import RecordTarget, record_target
from staging.services.backends import backend_choices
from staging.services.backends import help_text as backend_help

_GLOB_CHARS = frozenset("*?[")
_REPLAY_DIR = Path("\0replay-dir")  # `--into-app` without DIR: where replay looks


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "record",
        help="run staging and, when green, save the workflow histories for the replay gate",
        description="Same as `staging run --record DIR`: after a green run, save the history "
        "of every workflow it ran (before teardown) as JSON in DIR.",
    )
    p.add_argument("--project", type=Path, default=Path("."), help="dir with pyproject.toml")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--into-app",
        nargs="?",
        const=_REPLAY_DIR,
        type=Path,
        metavar="DIR",
        help="write into the app tree: DIR relative to the app (default: the directory of "
        "[tool.staging.replay] histories, else tests/histories). This changes the deployed "
        "tree, so `staging gate` stays closed until staging runs on it again",
    )
    where.add_argument(
        "--to",
        type=Path,
        metavar="DIR",
        help="write to DIR (relative to the current directory); default: "
        ".staging/histories/ in the app, which is not deployed",
    )
    p.add_argument("--backend", choices=backend_choices(), help=backend_help())
    p.add_argument("--timeout", type=float, help="whole-run timeout in seconds")
    p.add_argument(
        "--pipeline",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this pipeline (repeatable)",
    )


def default_dir(app_dir: Path, patterns: list[str]) -> Path:
    """The fixed leading directories of the first history glob, else `tests/histories`."""
    for pattern in patterns:
        parts: list[str] = []
        for part in Path(pattern).parts[:-1]:
            if _GLOB_CHARS & set(part):
                break
            parts.append(part)
        if parts:
            return app_dir.joinpath(*parts)
    return app_dir / "tests" / "histories"


def destination(loaded: LoadedConfig, args: argparse.Namespace) -> RecordTarget:
    if args.into_app is not None:
        if args.into_app == _REPLAY_DIR:
            path = default_dir(loaded.app_dir, loaded.config.replay.histories)
        else:
            path = loaded.app_dir / args.into_app
        return record_target(loaded.app_dir, path)
    return record_target(loaded.app_dir, args.to)


def run(args: argparse.Namespace) -> int:
    loaded = load_config(args.project)
    target = destination(loaded, args)
    started = time.time()
    overrides = {"backend": args.backend, "timeout": args.timeout}
    options = RunOptions(
        project=args.project,
        overrides={k: v for k, v in overrides.items() if v is not None},
        pipelines=list(args.pipeline),
        record_dir=target.path,
    )
    code = run_staging(options)
    if code == 0:
        dest = target.path
        # The run's notes said where and what that does to the gate; these are the files.
        new = sorted(p for p in dest.glob("*.json") if p.stat().st_mtime >= started - 1)
        sys.stdout.write(f"{len(new)} history file(s) in {dest}\n")
        for path in new:
            sys.stdout.write(f"  {path.name}\n")
    return code
