"""Which workflows of a namespace are the run's: the one filter every workflow scan uses.

A run's own namespace (process or docker backend, a namespace created per run) holds
nothing but the run's workflows, so its scans see the whole namespace: a workflow on a
task queue the config does not name is still the app's, and must not go unseen. In a
shared namespace (`backend = "attach"` with `namespace = ...`) other runs and other teams
have workflows too; there a scan sees only the run's task queues (suffixed per run, so
they are the run's alone) and the workflow ids it started.

`RunScope.query(*clauses)` is the visibility query of every scan (outcomes, stuck
activities, pending activities, history export, rollout). Names are quoted for
Temporal's SQL-like visibility syntax; a name that syntax cannot express is refused
rather than silently matching nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from staging.errors import ConfigError

if TYPE_CHECKING:
    from staging.config.model import StagingConfig
    from staging.services.temporal_endpoint import TemporalEndpoint

# The dev server (SQLite visibility) matches neither `"` nor `\` in a literal whatever
# the escaping; `'` is escaped as `\'`.
_UNQUOTABLE = frozenset('"\\')


@dataclass(frozen=True)
class RunScope:
    """The run's workflows: those on `task_queues`, or with one of `workflow_ids`.

    `RunScope.whole_namespace()` is every workflow (a namespace the run owns); an empty
    scope otherwise is refused: it would match nothing and hide every failure.
    """

    task_queues: tuple[str, ...] = ()
    workflow_ids: tuple[str, ...] = ()
    everything: bool = False

    def __post_init__(self) -> None:
        if not self.everything and not self.task_queues and not self.workflow_ids:
            raise ValueError(
                "a RunScope names task queues or workflow ids (or is whole_namespace())"
            )
        for name in (*self.task_queues, *self.workflow_ids):
            quote(name)  # refuse an unquotable name now, not at the first scan

    @classmethod
    def whole_namespace(cls) -> RunScope:
        return cls(everything=True)

    @classmethod
    def of_run(
        cls, config: StagingConfig, temporal: TemporalEndpoint, workflow_ids: Iterable[str] = ()
    ) -> RunScope:
        """The whole namespace when the run owns it, else the run's task queues.

        In a shared namespace the queues are the run's own names (suffixed with the run id
        by `StagingConfig.suffix_task_queues`), plus `workflow_ids`.
        """
        if not temporal.namespace_shared:
            return cls.whole_namespace()
        queues = tuple(dict.fromkeys(config.task_queues().values()))
        return cls(queues, tuple(dict.fromkeys(workflow_ids)))

    def with_workflow_ids(self, ids: Iterable[str]) -> RunScope:
        """This scope plus workflows the run started or saw (a child on another queue)."""
        if self.everything:
            return self
        return RunScope(self.task_queues, tuple(dict.fromkeys((*self.workflow_ids, *ids))))

    def filter(self) -> str | None:
        """The visibility clause alone; None for the whole namespace."""
        if self.everything:
            return None
        terms = []
        if self.task_queues:
            terms.append(_membership("TaskQueue", self.task_queues))
        if self.workflow_ids:
            terms.append(_membership("WorkflowId", self.workflow_ids))
        return terms[0] if len(terms) == 1 else "(" + " OR ".join(terms) + ")"

    def query(self, *clauses: str | None) -> str | None:
        """The scope AND each clause (`ExecutionStatus='Running'`...); None: no filter."""
        parts = [part for part in (self.filter(), *clauses) if part]
        if len(parts) <= 1:
            return parts[0] if parts else None
        return " AND ".join(f"({part})" for part in parts)


WHOLE_NAMESPACE = RunScope.whole_namespace()


def quote(name: str) -> str:
    """`name` as a single-quoted visibility literal."""
    bad = sorted({c for c in name if c in _UNQUOTABLE or not c.isprintable()})
    if bad:
        raise ConfigError(
            f"the name {name!r} cannot be used in a Temporal visibility query",
            expected="a task queue or workflow id without double quotes, backslashes or "
            "control characters",
            observed=f"{name!r} contains {', '.join(repr(c) for c in bad)}",
            hint="rename the task queue (or workflow id): Temporal's list filter cannot "
            "match it, so staging could not tell this run's workflows from others'",
        )
    return "'" + name.replace("'", "\\'") + "'"


def _membership(field: str, names: tuple[str, ...]) -> str:
    if len(names) == 1:
        return f"{field} = {quote(names[0])}"
    return f"{field} IN ({', '.join(quote(n) for n in names)})"
