"""What a run covered: the pipelines configured and run, and whether replay and checks ran.

A passing run proves only what it ran: `staging run --pipeline greet` on an app with two
pipelines passes without ever starting the other one. So every verdict carries a
`coverage` record and the gate opens only when it is complete. Pipelines are recorded
by name, not counted, so that several partial runs of one tree (shards, each running a
subset) can later be combined into one complete set by a union of `ran`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

NOT_REACHED = "not reached"
# A phase that passed, or had nothing to do (no histories configured, no pipelines), ran.
_PHASE_DONE = frozenset({"passed", "skipped"})
COVERED_PHASES = ("replay", "checks")


@dataclass(frozen=True)
class Coverage:
    configured: tuple[str, ...]  # [[tool.staging.pipelines]] names, in config order
    ran: tuple[str, ...]  # pipelines the run started, in run order
    phases: tuple[tuple[str, str], ...]  # (phase, status or NOT_REACHED) for COVERED_PHASES
    requested: tuple[str, ...] | None = None  # `--pipeline NAME...`; None = all

    @classmethod
    def of_run(
        cls,
        configured: Iterable[str],
        ran: Iterable[str],
        phase_status: Mapping[str, str],
        requested: Sequence[str] | None = None,
    ) -> Coverage:
        return cls(
            configured=tuple(configured),
            ran=tuple(ran),
            phases=tuple((p, phase_status.get(p, NOT_REACHED)) for p in COVERED_PHASES),
            requested=tuple(requested) if requested else None,
        )

    @property
    def missing(self) -> tuple[str, ...]:
        """Configured pipelines this run did not run."""
        ran = set(self.ran)
        return tuple(name for name in self.configured if name not in ran)

    @property
    def phases_not_run(self) -> tuple[str, ...]:
        return tuple(name for name, status in self.phases if status not in _PHASE_DONE)

    @property
    def complete(self) -> bool:
        return not self.missing and not self.phases_not_run

    def summary(self) -> str:
        """`partial run: 1 of 2 pipelines` or `complete run: 2 of 2 pipelines`."""
        ran = len(set(self.ran) & set(self.configured))
        kind = "complete" if self.complete else "partial"
        text = f"{kind} run: {ran} of {len(self.configured)} pipelines"
        if self.phases_not_run:
            text += f" ({', '.join(self.phases_not_run)} not run)"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "configured": list(self.configured),
            "ran": list(self.ran),
            "missing": list(self.missing),
            "requested": list(self.requested) if self.requested is not None else None,
            **{name: status for name, status in self.phases},
            "complete": self.complete,
        }

    @classmethod
    def from_verdict(cls, verdict: Mapping[str, Any]) -> Coverage | None:
        """The verdict's coverage; None when it has none (an older staging) or it is garbled.

        `complete` is recomputed from the lists, never trusted from the file.
        """
        data = verdict.get("coverage")
        if not isinstance(data, dict):
            return None
        configured, ran = _names(data.get("configured")), _names(data.get("ran"))
        if configured is None or ran is None:
            return None
        return cls(
            configured=configured,
            ran=ran,
            phases=tuple((p, str(data.get(p, NOT_REACHED))) for p in COVERED_PHASES),
            requested=_names(data.get("requested")) or None,
        )


def _names(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def partial_line(verdict: Mapping[str, Any]) -> str | None:
    """The console/report line for a pass that did not cover everything, else None."""
    if verdict.get("status") != "passed":
        return None
    coverage = Coverage.from_verdict(verdict)
    if coverage is None or coverage.complete:
        return None
    shard = verdict.get("shard")
    if isinstance(shard, dict) and shard.get("count"):
        # A shard is partial by design: the gate combines it with the tree's other shards.
        return (
            f"shard {shard.get('index')}/{shard.get('count')}: {coverage.summary()} — "
            "`staging gate` opens once the shards of this tree cover every pipeline"
        )
    line = coverage.summary()
    if coverage.missing:
        line += f"; not run: {', '.join(coverage.missing)}"
    return line + " — `staging gate` stays closed for a partial run"
