"""`staging` command line: a thin dispatcher over `staging.commands.*`."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from staging import __version__
from staging.errors import StagingError

COMMANDS = ["run", "up", "down", "gate", "report", "history", "replay", "record", "doctor"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="staging",
        description="Ephemeral staging environments and a pre-deploy gate for Temporal workers.",
    )
    parser.add_argument("--version", action="version", version=f"staging {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"staging.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"staging.commands.{name}":
                continue  # not built yet
            raise
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
