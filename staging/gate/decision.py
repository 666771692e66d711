"""What the gate decided: open, or closed with the state, the reason and a `Hint:`."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Protocol

STOP = "STOP: read the diagnosis (`staging report {run}`) before trying again."


class Tree(Protocol):
    @property
    def hash(self) -> str: ...
    @property
    def commit(self) -> str | None: ...
    @property
    def dirty(self) -> bool: ...


class GateState(enum.StrEnum):
    OPEN = "open"
    NO_KEY = "no-key"
    NO_VERDICT = "no-verdict"
    UNREADABLE = "unreadable"
    BAD_SIGNATURE = "bad-signature"
    UNSIGNED = "unsigned"
    MISMATCH = "mismatch"
    RUN_FAILED = "run-failed"
    PARTIAL = "partial-run"


@dataclass(frozen=True)
class GateDecision:
    state: GateState
    reason: str
    details: tuple[str, ...] = ()
    hint: str = ""
    verdict: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def open(self) -> bool:
        return self.state is GateState.OPEN

    def render(self) -> str:
        head = f"staging gate: {'OPEN' if self.open else 'CLOSED'} — {self.reason}"
        lines = [head, *(f"  {d}" for d in self.details)]
        if self.hint:
            lines.append(f"Hint: {self.hint}")
        return "\n".join(lines)


def describe_tree(tree: Tree) -> str:
    text = f"tree {tree.hash[:12]}"
    if tree.commit:
        text += f", commit {tree.commit[:10]}"
    if tree.dirty:
        text += " + uncommitted changes"
    return text
