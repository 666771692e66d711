"""`staging` command line: a thin dispatcher over `staging.commands.*`."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from staging import __version__
from staging.errors import StagingError

COMMANDS = [
    "run",
    "up",
    "down",
    "gate",
    "report",
    "history",
    "replay",
    "record",
    "doctor",
    "init",
]


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser; with `only`, just that command's module is imported (the others
    get a bare entry), so `staging gate` does not pay for temporalio's import."""
    parser = argparse.ArgumentParser(
        prog="staging",
        description="Ephemeral staging environments and a pre-deploy gate for Temporal workers.",
    )
    parser.add_argument("--version", action="version", version=f"staging {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        if only is not None and name != only:
            subparsers.add_parser(name)
            continue
        try:
            module = importlib.import_module(f"staging.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"staging.commands.{name}":
                continue  # not built yet
            raise
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    chosen = next((w for w in words if not w.startswith("-")), None)
    parser = build_parser(chosen if chosen in COMMANDS else None)
    args = parser.parse_args(words)
    module = importlib.import_module(f"staging.commands.{args.command}")
    try:
        code: int = module.run(args)
    except StagingError as exc:
        print(f"staging {args.command}: {exc.render()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


def entry() -> None:
    """Console-script entry point: exit without interpreter finalization.

    temporalio's Rust bridge threads can outlive the event loop and abort the process
    during finalization ("PyGILState_Release ... finalizing", temporalio/sdk-python#300),
    which would turn a verdict's exit code into SIGABRT. Everything we write is flushed
    and closed by then, so skipping finalization loses nothing.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
