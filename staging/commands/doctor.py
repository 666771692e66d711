"""`staging doctor`: what would stop a run, before starting one. Exit 0 when a run could start."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from staging.doctor import DoctorReport, run_doctor
from staging.services.backends import backend_choices
from staging.services.backends import help_text as backend_help

_MARK = {"ok": "✓", "warn": "!", "fail": "✗", "skip": "-"}
_COLOR = {"ok": "green", "warn": "yellow", "fail": "red", "skip": "dim"}


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "doctor",
        help="check what would stop a run: Docker, binaries, config, interpreter, settings",
        description="Check, without starting any service, whether `staging run` could start: "
        "the Docker engine and images, the process backend's binaries, [tool.staging], the "
        "app's interpreter, its settings class (with the run's rules) and the replay histories.",
    )
    p.add_argument("--project", type=Path, default=Path("."), help="dir with pyproject.toml")
    p.add_argument("--backend", choices=backend_choices(), help=backend_help())
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    report = run_doctor(args.project, backend=args.backend)
    if args.json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    elif sys.stdout.isatty() and not os.environ.get("CI"):
        render_rich(report, Console(highlight=False))
    else:
        sys.stdout.write(render_plain(report))
    return 0 if report.ok else 1


def render_plain(report: DoctorReport) -> str:
    lines = [f"staging doctor: {report.project}"]
    width = max((len(c.name) for c in report.checks), default=0)
    for c in report.checks:
        lines.append(f"{c.status.upper():<4}  {c.name:<{width}}  {c.detail}")
        if c.hint and c.status in ("warn", "fail"):
            lines.append(f"{'':<4}  {'':<{width}}  Hint: {c.hint}")
    if report.provenance:
        lines.append("")
        lines.append("settings provenance (secrets redacted):")
        for row in report.provenance:
            detail = f" [{row['detail']}]" if row.get("detail") else ""
            lines.append(f"  {row['field']}: {row['source']}{detail} = {row['value']}")
    if report.histories:
        lines.append("")
        lines.append("replay histories:")
        for h in report.histories:
            detail = f" — {h['detail']}" if h.get("detail") else ""
            lines.append(
                f"  {h['file']} ({h['workflow_type']}, {h['events']} events): {h['status']}{detail}"
            )
    verdict = "a run could start" if report.ok else "a run would not start"
    lines.append("")
    lines.append(f"{verdict} (backend: {report.backend or 'none'})")
    return "\n".join(lines) + "\n"


def render_rich(report: DoctorReport, console: Console) -> None:
    table = Table(title=f"staging doctor · {escape(report.project)}", title_justify="left")
    table.add_column("", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("status / hint")
    for c in report.checks:
        color = _COLOR[c.status]
        text = escape(c.detail)
        if c.hint and c.status in ("warn", "fail"):
            text += f"\n[bold]Hint:[/bold] {escape(c.hint)}"
        table.add_row(f"[{color}]{_MARK[c.status]}[/{color}]", escape(c.name), text)
    console.print(table)
    if report.provenance:
        prov = Table(title="settings provenance (secrets redacted)", title_justify="left")
        for column in ("field", "source", "value", "detail"):
            prov.add_column(column)
        for row in report.provenance:
            prov.add_row(*(escape(row.get(k, "")) for k in ("field", "source", "value", "detail")))
        console.print(prov)
    if report.histories:
        hist = Table(title="replay histories", title_justify="left")
        for column in ("file", "workflow", "events", "status"):
            hist.add_column(column)
        for h in report.histories:
            status = h["status"] + (f": {h['detail']}" if h.get("detail") else "")
            hist.add_row(escape(h["file"]), escape(h["workflow_type"]), h["events"], escape(status))
        console.print(hist)
    color = "green" if report.ok else "red"
    verdict = "a run could start" if report.ok else "a run would not start"
    console.print(f"[bold {color}]{verdict}[/bold {color}] (backend: {report.backend or 'none'})")
