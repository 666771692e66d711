"""What a human sees: a live phase list on a terminal, plain lines in CI, nothing with --json.

The CLI's `EventSink` (`staging.events`): the core emits events, this draws them.
Everything printed goes through the run's redactor first.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.status import Status as Spinner

from staging.redact import Redactor
from staging.result import PhaseResult, Status

_MARK = {
    Status.PASSED: "[green]✓[/green]",
    Status.FAILED: "[red]✗[/red]",
    Status.ABORTED: "[yellow]![/yellow]",
    Status.SKIPPED: "[dim]-[/dim]",
}


class RunConsole:
    """The terminal `EventSink` of `staging run`."""

    def __init__(
        self, redactor: Redactor, *, quiet: bool = False, plain: bool | None = None
    ) -> None:
        self._redact = redactor
        self.quiet = quiet
        if plain is None:
            plain = bool(os.environ.get("CI")) or not sys.stdout.isatty()
        self.plain = plain
        self._console = Console(
            highlight=False,
            soft_wrap=True,
            force_terminal=None if not plain else False,
            no_color=plain and not os.environ.get("FORCE_COLOR"),
        )
        self._spinner: Spinner | None = None

    def _print(self, markup: str) -> None:
        if self.quiet:
            return
        try:
            self._console.print(markup)
        # rich turns a broken pipe into SystemExit(1) (after pointing stdout at /dev/null).
        except (OSError, SystemExit):  # stdout went away (`| head`): the run goes on
            self.quiet = True

    def info(self, message: str) -> None:
        self._print(f"[dim]·[/dim] {escape(self._redact(message))}")

    def warn(self, message: str) -> None:
        self._print(f"[yellow]warning:[/yellow] {escape(self._redact(message))}")

    def phase_started(self, name: str) -> None:
        if self.quiet:
            return
        if self.plain:
            return
        try:
            self._spinner = self._console.status(f"{name} …")
            self._spinner.start()
        except (OSError, SystemExit):
            self._spinner, self.quiet = None, True

    def phase_finished(self, result: PhaseResult) -> None:
        self.close()
        summary = result.details.get("summary", "")
        line = f"{_MARK[result.status]} {result.name:<12} {result.duration:6.2f}s"
        if summary:
            line += f"  {escape(self._redact(str(summary)))}"
        self._print(line)

    def verdict(self, verdict: dict[str, Any]) -> None:
        """One screen: the failure class, cause, evidence and hint first when red."""
        status = verdict["status"]
        diagnosis = verdict.get("diagnosis")
        if diagnosis:
            self._print("")
            self._print(
                f"[bold red]{escape(diagnosis['class'])}[/bold red]: "
                f"{escape(self._redact(diagnosis['cause']))}"
            )
            for line in diagnosis.get("evidence", [])[:12]:
                self._print(f"  │ {escape(self._redact(str(line)))}")
            self._print(f"[bold]Hint:[/bold] {escape(self._redact(diagnosis['hint']))}")
        for line in verdict.get("notes", []):
            self._print(escape(self._redact(str(line))))
        color = {"passed": "green", "failed": "red"}.get(status, "yellow")
        line = f"\n[bold {color}]staging {status.upper()}[/bold {color}] in "
        line += f"{verdict.get('duration', 0):.1f}s · "
        if verdict.get("run_dir"):
            line += f"run {verdict['run_id']} · {escape(str(verdict['run_dir']))}"
        else:
            # No run dir (the config did not load): a run id `staging report` cannot find
            # would only send the reader looking for it.
            line += "nothing recorded (no run directory was written)"
        from staging.gate.coverage import partial_line

        partial = partial_line(verdict)  # a pass of a --pipeline subset: the gate stays shut
        if partial:
            line += f"\n[bold yellow]{escape(partial)}[/bold yellow]"
        self._print(line)

    def close(self) -> None:
        if self._spinner is not None:
            spinner, self._spinner = self._spinner, None
            try:
                spinner.stop()
            except (OSError, SystemExit):
                self.quiet = True
