"""Reading a workflow's history for the rollout: when to swap, where to reset, what diverged.

Pure functions over `HistoryEvent`s, so each rule is tested without a server.

The swap point is an event id. "After activity X" means after the old code *reacted* to
X's completion: the first WorkflowTaskCompleted after ActivityTaskCompleted(X), so the old
code's next commands are in the history the new code must replay. That is the moment a
deploy hurts: a swap before the reaction lets the new code decide afresh.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.api.history.v1 import HistoryEvent

from staging.replay.messages import Divergence, parse_nondeterminism

At = str | Mapping[Any, str | int]

_CLOSED = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
}
_WFT_COMPLETED = EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
_WFT_UNFINISHED = {
    EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
    EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
}


def describe_at(at: At, halfway: int | None = None) -> str:
    if isinstance(at, Mapping):
        ((key, value),) = at.items()
        return f"after activity {value!r}" if key == "after_activity" else f"after {value} events"
    if halfway:
        return f"halfway (event {halfway} of the last green run's {2 * halfway})"
    return "halfway (after the first activity; no event count recorded yet)"


def closed(events: Sequence[HistoryEvent]) -> bool:
    return bool(events) and events[-1].event_type in _CLOSED


def _activity_names(events: Sequence[HistoryEvent]) -> dict[int, str]:
    return {
        e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }


def _reaction_after(events: Sequence[HistoryEvent], event_id: int) -> int | None:
    """The first WorkflowTaskCompleted after `event_id`: the old code's reaction to it."""
    return next(
        (
            e.event_id
            for e in events
            if e.event_id > event_id
            and e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
        ),
        None,
    )


def swap_point(events: Sequence[HistoryEvent], at: At, halfway: int | None = None) -> int | None:
    """The event id the swap waits for, once the history has reached it; None until then."""
    if isinstance(at, Mapping):
        ((key, value),) = at.items()
        if key == "after_events":
            count = int(value)
            return count if events and events[-1].event_id >= count else None
        wanted: str | None = str(value)
    elif halfway:
        return halfway if events and events[-1].event_id >= halfway else None
    else:
        wanted = None  # the first activity, whichever it is
    names = _activity_names(events)
    for e in events:
        if e.event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            continue
        name = names.get(e.activity_task_completed_event_attributes.scheduled_event_id)
        if wanted is None or name == wanted:
            return _reaction_after(events, e.event_id)
    return None


def reset_point(
    events: Sequence[HistoryEvent],
    point: int,
    stopped: Callable[[str], bool] = lambda identity: False,
) -> int | None:
    """Where to reset a run the old worker took past the swap point before it was frozen.

    None when no reset is needed: the run is still mid-flight and what is left to do goes
    to this tree's worker with a recorded first attempt.

    A reset to a WorkflowTaskCompleted discards that task's commands, so the task after
    the swap point is the one to reset to: the commands the old code issued at the swap
    point stay in the history. When the run ended in that very task, it is the last one.

    A running run needs one when a stopped worker (`stopped(identity)`) had started the
    workflow task after the swap point and never completed it: the server retries such a
    task only after the workflow task timeout (10 s by default), and then as attempt 2,
    whose failure (a non-determinism of this tree) it does not record in the history.
    Resetting to that task (its timeout or failure, or the event after its start while it
    is still pending) hands it to this tree as a fresh, recorded first attempt.
    """
    if closed(events):
        completed = [e.event_id for e in events if e.event_type == _WFT_COMPLETED]
        later = [i for i in completed if i > point]
        if later:
            return later[0]
        return completed[-1] if completed else None
    started: HistoryEvent | None = None
    target: int | None = None
    for e in events:
        if e.event_id <= point:
            continue
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            started = e
        elif e.event_type == _WFT_COMPLETED:
            started, target = None, None
        elif e.event_type in _WFT_UNFINISHED and started is not None:
            if stopped(started.workflow_task_started_event_attributes.identity):
                target = e.event_id
            started = None
    if started is not None and stopped(started.workflow_task_started_event_attributes.identity):
        return started.event_id + 1
    return target


@dataclass(frozen=True)
class RolloutDivergence:
    task_failed_event_id: int
    divergence: Divergence
    old: str  # what the old code recorded at the diverging event
    new: str  # what the new code issues there

    def describe(self) -> str:
        where = (
            f"event {self.divergence.event_id}"
            if self.divergence.event_id is not None
            else f"the workflow task failed at event {self.task_failed_event_id}"
        )
        return f"at {where}: the old code recorded {self.old}; the new code {self.new}"


def _recorded(event: HistoryEvent | None, names: Mapping[int, str]) -> str | None:
    if event is None:
        return None
    kind = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_").lower()
    if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        return f"a scheduled activity {names.get(event.event_id, '?')!r} ({kind})"
    if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
        return f"a timer {event.timer_started_event_attributes.timer_id!r} ({kind})"
    if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
        return f"a marker {event.marker_recorded_event_attributes.marker_name!r} ({kind})"
    return kind


def find_divergence(events: Sequence[HistoryEvent], after: int = 0) -> RolloutDivergence | None:
    """The first workflow task after event `after` that failed on non-determinism."""
    names = _activity_names(events)
    by_id = {e.event_id: e for e in events}
    for e in events:
        if e.event_id <= after or e.event_type != EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            continue
        attrs = e.workflow_task_failed_event_attributes
        message = attrs.failure.message
        nondeterministic = (
            attrs.cause
            == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR
            or "nondeterminism" in message.lower()
        )
        if not nondeterministic:
            continue
        div = parse_nondeterminism(message)
        event = by_id.get(div.event_id) if div.event_id is not None else None
        old = div.recorded or _recorded(event, names) or div.event_type or "an event"
        new = f"issues {div.produced}" if div.produced and div.recorded else None
        return RolloutDivergence(
            task_failed_event_id=e.event_id,
            divergence=div,
            old=old,
            new=new or div.produced or div.detail,
        )
    return None
