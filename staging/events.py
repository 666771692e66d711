"""What a run tells its watcher: the events phases and the runner emit, and where they go.

The core never prints. Phases and the runner call an `EventSink` (`ctx.console`); the
CLI passes one that draws on the terminal (`staging.commands.console.RunConsole`), the
pytest plugin passes a `NullSink`, tests pass a `RecordingSink` and read what was said.
Messages reach the sink unredacted: redaction belongs to whatever writes them somewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from staging.result import PhaseResult


@runtime_checkable
class EventSink(Protocol):
    def info(self, message: str) -> None:
        """Progress worth a line (a service started, the shared venv used)."""

    def warn(self, message: str) -> None:
        """Something the user should read, which does not fail the run."""

    def phase_started(self, name: str) -> None: ...

    def phase_finished(self, result: PhaseResult) -> None: ...

    def verdict(self, verdict: dict[str, Any]) -> None:
        """The run's verdict document, once, at the end."""

    def close(self) -> None:
        """Release the terminal (a live spinner) before anything else writes to it."""


class NullSink:
    """Says nothing: for embedders (the pytest plugin) that have their own output."""

    def info(self, message: str) -> None:
        pass

    def warn(self, message: str) -> None:
        pass

    def phase_started(self, name: str) -> None:
        pass

    def phase_finished(self, result: PhaseResult) -> None:
        pass

    def verdict(self, verdict: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class Event:
    kind: str  # the sink method's name: "info", "warn", "phase_started", ...
    payload: Any = None  # its argument (None for `close`)


@dataclass
class RecordingSink:
    """Keeps every event in order, for tests of phases and the runner."""

    events: list[Event] = field(default_factory=list)

    def info(self, message: str) -> None:
        self.events.append(Event("info", message))

    def warn(self, message: str) -> None:
        self.events.append(Event("warn", message))

    def phase_started(self, name: str) -> None:
        self.events.append(Event("phase_started", name))

    def phase_finished(self, result: PhaseResult) -> None:
        self.events.append(Event("phase_finished", result))

    def verdict(self, verdict: dict[str, Any]) -> None:
        self.events.append(Event("verdict", verdict))

    def close(self) -> None:
        self.events.append(Event("close"))

    def of(self, kind: str) -> list[Any]:
        """The payloads of one kind of event, in order: `sink.of("warn")`."""
        return [event.payload for event in self.events if event.kind == kind]
