"""The rollout's reading of histories: swap point, reset point, divergence (issue 15)."""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.api.history.v1 import HistoryEvent

from staging.rollout.history import (
    closed,
    describe_at,
    find_divergence,
    reset_point,
    swap_point,
)

E = EventType


def _event(event_id: int, kind: int, **attrs: object) -> HistoryEvent:
    event = HistoryEvent(event_id=event_id, event_type=kind)  # type: ignore[arg-type]
    if kind == E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        event.activity_task_scheduled_event_attributes.activity_type.name = str(attrs["name"])
    if kind == E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
        event.activity_task_completed_event_attributes.scheduled_event_id = int(attrs["of"])  # type: ignore[call-overload]
    if kind == E.EVENT_TYPE_WORKFLOW_TASK_FAILED:
        event.workflow_task_failed_event_attributes.failure.message = str(attrs["message"])
        event.workflow_task_failed_event_attributes.cause = attrs.get(  # type: ignore[assignment]
            "cause", WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNSPECIFIED
        )
    return event


def pipeline_history(upto: int = 23) -> list[HistoryEvent]:
    """The example's shape: extract (5-7), transform (11-13), load (17-19), completed (23)."""
    wft = [E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, E.EVENT_TYPE_WORKFLOW_TASK_STARTED]
    kinds: list[tuple[int, dict[str, object]]] = [(E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, {})]
    kinds += [(k, {}) for k in wft] + [(E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, {})]
    for first, name in ((5, "extract"), (11, "transform"), (17, "load")):
        kinds += [
            (E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, {"name": name}),
            (E.EVENT_TYPE_ACTIVITY_TASK_STARTED, {}),
            (E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, {"of": first}),
        ]
        kinds += [(k, {}) for k in wft] + [(E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, {})]
    kinds.append((E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, {}))
    return [_event(i, k, **a) for i, (k, a) in enumerate(kinds, start=1)][:upto]


def test_after_an_activity_waits_for_the_old_codes_reaction_to_it() -> None:
    at = {"after_activity": "transform"}
    assert swap_point(pipeline_history(13), at) is None  # completed, not yet reacted to
    assert swap_point(pipeline_history(15), at) is None
    assert swap_point(pipeline_history(16), at) == 16  # the WorkflowTaskCompleted after it
    assert swap_point(pipeline_history(), {"after_activity": "nope"}) is None


def test_halfway_is_the_first_activity_without_a_count_and_the_count_with_one() -> None:
    assert swap_point(pipeline_history(9), "halfway") is None
    assert swap_point(pipeline_history(10), "halfway") == 10
    assert swap_point(pipeline_history(11), "halfway", halfway=12) is None
    assert swap_point(pipeline_history(12), "halfway", halfway=12) == 12
    assert swap_point(pipeline_history(7), {"after_events": 7}) == 7
    assert swap_point(pipeline_history(6), {"after_events": 7}) is None


def test_reset_keeps_the_commands_issued_at_the_swap_point() -> None:
    history = pipeline_history()
    assert closed(history) and not closed(history[:-1])
    assert reset_point(history, 10) == 16  # the task after: event 11 (transform) is kept
    assert reset_point(history, 22) == 22  # ended in that very task: the last one
    assert reset_point(history[:1], 1) is None


def _started_by(history: list[HistoryEvent], identity: str) -> list[HistoryEvent]:
    for e in history:
        if e.event_type == E.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            e.workflow_task_started_event_attributes.identity = identity
    return history


def test_a_running_run_is_reset_only_for_a_task_a_stopped_worker_left() -> None:
    def old(identity: str) -> bool:
        return identity == "1@old"

    # the old worker took the task after the swap point and never completed it
    pending = _started_by(pipeline_history(15), "1@old")
    assert reset_point(pending, 10, old) == 16  # its timeout, once the server writes it
    timed_out = [*pending, _event(16, E.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT)]
    assert reset_point(timed_out, 10, old) == 16
    # this tree's worker took it, or it was never taken, or it completed: nothing to reset
    assert reset_point(_started_by(pipeline_history(15), "2@new"), 10, old) is None
    assert reset_point(pipeline_history(14), 10, old) is None
    assert reset_point(_started_by(pipeline_history(17), "1@old"), 10, old) is None


def test_divergence_names_the_recorded_and_the_issued_command() -> None:
    message = (
        "[TMPRL1100] Nondeterminism error: Timer machine does not handle this event: "
        "HistoryEvent(id: 11, ActivityTaskScheduled)"
    )
    history = [
        *pipeline_history(13),
        _event(14, E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED),
        _event(15, E.EVENT_TYPE_WORKFLOW_TASK_STARTED),
        _event(16, E.EVENT_TYPE_WORKFLOW_TASK_FAILED, message=message),
    ]
    div = find_divergence(history)
    assert div is not None
    assert div.divergence.event_id == 11
    assert "'transform'" in div.old and "timer" in div.new
    assert div.describe().startswith("at event 11: the old code recorded")


def test_other_workflow_task_failures_are_not_a_divergence() -> None:
    history = [
        *pipeline_history(6),
        _event(7, E.EVENT_TYPE_WORKFLOW_TASK_FAILED, message="NameError: name 'x' is not defined"),
    ]
    assert find_divergence(history) is None
    cause = WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR
    flagged = [
        *history[:-1],
        _event(7, E.EVENT_TYPE_WORKFLOW_TASK_FAILED, message="x", cause=cause),
    ]
    assert find_divergence(flagged) is not None


def test_describe_at() -> None:
    assert describe_at({"after_activity": "load"}) == "after activity 'load'"
    assert describe_at({"after_events": 9}) == "after 9 events"
    assert "event 11" in describe_at("halfway", 11)
