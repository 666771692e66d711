"""`staging report [RUN]`: show the last (or a given) run's report on the console."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from staging.gate import StoreError, VerdictStore, app_dir_of
from staging.report.markdown import render_markdown


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "report",
        help="show the report of the last run (or of RUN)",
        description="Re-render a run's report (report.md, else its verdict.json) to the console.",
    )
    p.add_argument("run_id", nargs="?", metavar="RUN", help="run id or a unique prefix of one")
    p.add_argument("--project", type=Path, default=Path("."), help="dir with pyproject.toml")
    p.add_argument("--plain", action="store_true", help="print the Markdown source as is")


def run(args: argparse.Namespace) -> int:
    store = VerdictStore(app_dir_of(args.project))
    summary = store.run(args.run_id)
    report = summary.run_dir / "report.md"
    if report.is_file():
        text = report.read_text(encoding="utf-8")
    elif summary.verdict is not None:
        # Reports are written from the redacted verdict, so this needs no redactor.
        text = render_markdown(summary.verdict)
    else:
        found = sorted(p.name for p in summary.run_dir.iterdir())
        raise StoreError(
            f"run {summary.run_id} left neither report.md nor verdict.json",
            observed=f"{summary.run_dir}: {', '.join(found) or 'empty'}",
            hint="the run was killed before it finished; look at its logs/ directory",
        )
    if args.plain or not sys.stdout.isatty():
        sys.stdout.write(text)
        return 0
    from rich.console import Console
    from rich.markdown import Markdown

    Console().print(Markdown(text))
    return 0
