"""`staging record [--to DIR]`: a staging run that saves its workflow histories when green.

Histories live in the run's throwaway Temporal namespace, which teardown removes, so
they are fetched at the end of a green run: this is `staging run --record DIR` (the
practical form, with every `run` option) with DIR defaulting to where
`[tool.staging.replay] histories` looks, or `tests/histories` in the app. Commit the
files: the next change is replayed against them before it can deploy.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from staging.commands.run import run_staging
from staging.config.load import load_config
from staging.context import RunOptions

_GLOB_CHARS = frozenset("*?[")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "record",
        help="run staging and, when green, save the workflow histories for the replay gate",
        description="Same as `staging run --record DIR`: after a green run, save the history "
        "of every workflow it ran (before teardown) as JSON in DIR.",
    )
    p.add_argument("--project", type=Path, default=Path("."), help="dir with pyproject.toml")
    p.add_argument(
        "--to",
        type=Path,
        metavar="DIR",
        help="where to write (default: the directory of [tool.staging.replay] histories, "
        "else tests/histories in the app)",
    )
    p.add_argument("--backend", choices=["auto", "docker", "process"], help="services backend")
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


def run(args: argparse.Namespace) -> int:
    loaded = load_config(args.project)
    dest = (args.to or default_dir(loaded.app_dir, loaded.config.replay.histories)).resolve()
    started = time.time()
    overrides = {"backend": args.backend, "timeout": args.timeout}
    options = RunOptions(
        project=args.project,
        overrides={k: v for k, v in overrides.items() if v is not None},
        pipelines=list(args.pipeline),
        record_dir=dest,
    )
    code = run_staging(options)
    if code == 0:
        new = sorted(p for p in dest.glob("*.json") if p.stat().st_mtime >= started - 1)
        sys.stdout.write(f"recorded {len(new)} history file(s) in {dest}\n")
        for path in new:
            sys.stdout.write(f"  {path.name}\n")
    return code
