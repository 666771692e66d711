"""What the SDK core says when replay diverges, and where in the history that was.

The core's `NondeterminismError` text is a Rust debug dump of a `Failure` whose message
names either an event (`HistoryEvent(id: 23, WorkflowExecutionCompleted)`) and the state
machine that could not take it, or a mismatch between a recorded event and the code's
command (`Activity type of scheduled event 'transform' does not match activity type of
activity command 'load'`), which names no event id: `locate` finds it among the events
the probe listed for the diverging workflow task.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

_RUST_STRING = re.compile(r'message: "((?:[^"\\]|\\.)*)"')
_ESCAPE = re.compile(r"\\(u\{[0-9a-fA-F]+\}|.)")
_PREFIX = re.compile(r"^\[TMPRL\d+\]\s*Nondeterminism error:\s*")
_EVENT = re.compile(r"HistoryEvent\(id: (?P<id>\d+), (?P<type>\w+)\)")
_EVENT_DEBUG = re.compile(r"HistoryEvent \{ event_id: (?P<id>\d+).*?event_type: (?P<type>\w+)")
_MACHINE = re.compile(r"^(?P<machine>[A-Za-z ]+?) machine (?:does not|cannot) handle this event")
_NO_COMMAND = re.compile(r"^No command scheduled for event")
_MISMATCH = re.compile(
    r"^(?P<what>.+?) of (?:scheduled event|recorded marker) '(?P<recorded>.*?)' does not\s+"
    r"match .+? command "
    r"'(?P<produced>.*?)'"
)
_PATCH = re.compile(r"patch marker encountered for change (?P<patch>\S+?),")
_PRODUCED = {
    "activity": "schedules an activity",
    "local activity": "runs a local activity",
    "timer": "starts a timer",
    "complete workflow": "completes the workflow",
    "fail workflow": "fails the workflow",
    "cancel workflow": "cancels the workflow",
    "continue as new workflow": "continues as new",
    "child workflow": "starts a child workflow",
    "signal external wf": "signals another workflow",
    "cancel external wf": "cancels another workflow",
    "change": "records a patch marker",
    "update": "handles an update",
    "nexus operation": "starts a Nexus operation",
}


def core_messages(raw: str) -> list[str]:
    """The `message: "..."` strings of a core `Failure { ... }` dump, outermost first."""
    found = [_unescape(m) for m in _RUST_STRING.findall(raw)] or [raw]
    return [_PREFIX.sub("", m.strip()).strip() for m in found if m.strip()] or [raw.strip()]


def _unescape(text: str) -> str:
    """Undo Rust's `{:?}` string escaping (\\" \\\\ \\n \\t \\u{..})."""
    simple = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", '"': '"', "'": "'", "\\": "\\"}

    def one(m: re.Match[str]) -> str:
        body = m.group(1)
        if body.startswith("u{"):
            return chr(int(body[2:-1], 16))
        return simple.get(body, m.group(0))

    return _ESCAPE.sub(one, text)


@dataclass(frozen=True)
class Divergence:
    """Where replay diverged: the event, what the history has, what the code does now."""

    detail: str  # the core's message without its wrapper
    event_id: int | None = None
    event_type: str | None = None  # history side, e.g. "ActivityTaskScheduled"
    name: str | None = None  # the event's activity type / timer id / marker name
    recorded: str | None = None  # "activity type 'transform'" (a mismatch message)
    produced: str | None = None  # "schedules an activity" / "activity type 'load'"
    task_completed_event_id: int | None = None
    patch: str | None = None

    def describe(self) -> str:
        where = f"at event {self.event_id}" if self.event_id is not None else ""
        if not where and self.task_completed_event_id is not None:
            where = f"in the workflow task completed at event {self.task_completed_event_id}"
        has = self.event_type or "an event"
        if self.name and not self.recorded:
            has += f" {self.name!r}"
        if self.patch:
            return (
                f"{where}: the history has the patch marker {self.patch!r}, but the code no "
                f"longer calls workflow.patched({self.patch!r})"
            ).lstrip(": ")
        if self.recorded and self.produced:
            return (
                f"{where} ({has}): the history has {self.recorded}, but the code now issues "
                f"{self.produced}"
            ).lstrip(" ")
        if self.produced:
            return f"{where}, where the history has {has}, the code now {self.produced}".lstrip(
                ", "
            )
        return f"{where}: {self.detail}".lstrip(": ")


def parse_nondeterminism(message: str) -> Divergence:
    """Read a `NondeterminismError` message (the raw `str()` or the core's inner message)."""
    detail = core_messages(message)[0]
    event = _EVENT.search(detail) or _EVENT_DEBUG.search(detail)
    div = Divergence(detail=detail)
    if event:
        div = replace(div, event_id=int(event["id"]), event_type=event["type"])
    if machine := _MACHINE.match(detail):
        kind = machine["machine"].strip().lower()
        return replace(div, produced=_PRODUCED.get(kind, f"issues a {kind} command"))
    if _NO_COMMAND.match(detail):
        return replace(div, produced="issues no command for it")
    if mismatch := _MISMATCH.match(detail):
        what = mismatch["what"].strip().lower()
        return replace(
            div,
            recorded=f"{what} {mismatch['recorded']!r}",
            produced=f"{what} {mismatch['produced']!r}",
            name=mismatch["recorded"] if what.endswith("type") else None,
        )
    if patch := _PATCH.search(detail):
        return replace(div, patch=patch["patch"], event_type="MarkerRecorded")
    return div


def locate(div: Divergence, task: Mapping[str, Any] | None) -> Divergence:
    """Fill in the event from the probe's view of the diverging workflow task."""
    if not task:
        return div
    completed = task.get("task_completed_event_id")
    div = replace(div, task_completed_event_id=completed)
    events: list[Mapping[str, Any]] = list(task.get("events") or ())
    commands = [e for e in events if e.get("workflow_task_completed_event_id") == completed]
    match: Mapping[str, Any] | None = None
    if div.event_id is not None:
        match = next((e for e in events if e.get("event_id") == div.event_id), None)
    elif div.patch:
        match = next((e for e in commands if e.get("event_type") == "MarkerRecorded"), None)
    elif div.recorded is not None:
        wanted = div.recorded.split("'")[1] if "'" in div.recorded else ""
        key = "activity_id" if " id " in f" {div.recorded} " else "name"
        match = next((e for e in commands if str(e.get(key, "")) == wanted), None)
    if match is None and div.event_id is None and commands:
        match = commands[0]
    if match is None:
        return div
    return replace(
        div,
        event_id=int(match["event_id"]),
        event_type=str(match.get("event_type") or div.event_type),
        name=div.name or (str(match["name"]) if match.get("name") else None),
    )
