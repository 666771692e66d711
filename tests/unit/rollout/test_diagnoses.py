"""What the rollout and the interrupted pass say when they fail (issue 15)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from staging.phases.rollout import _nondeterminism, _patience, _stuck
from staging.replay.messages import parse_nondeterminism
from staging.result import Diagnosis, FailureClass
from staging.rollout.chaos import _failed_pass, _not_idempotent
from staging.rollout.history import RolloutDivergence
from staging.rollout.kill import Interrupter, Kill
from staging.rollout.rehearsal import InFlight
from staging.rollout.tree import GreenTree
from tests.unit.rollout.test_history import pipeline_history

KILL = Kill("load", "wf-1", 1, "worker", 4242, 0.41, replacement="worker-replacement-1")
CHECK = "select (select count(*) from load_log) = (select count(*) from daily_conversions)"


def test_not_idempotent_names_the_activity_the_kill_and_the_check() -> None:
    diagnosis = _not_idempotent([CHECK], [KILL], {CHECK: False})
    assert diagnosis.failure_class is FailureClass.PIPELINE_NOT_IDEMPOTENT
    assert "'load'" in diagnosis.cause and CHECK in diagnosis.cause
    assert any("SIGKILL to worker (pid 4242)" in e for e in diagnosis.evidence)
    assert any("held without interruption, fails with it" in e for e in diagnosis.evidence)
    assert "ON CONFLICT" in diagnosis.hint


def test_a_failing_retry_of_the_killed_activity_is_not_idempotent_others_keep_their_class() -> None:
    retry = Diagnosis(
        FailureClass.PIPELINE_STUCK_RETRYING,
        "activity 'load' keeps failing: UniqueViolation",
        "hint",
    )
    assert _failed_pass(retry, [KILL]).failure_class is FailureClass.PIPELINE_NOT_IDEMPOTENT
    other = Diagnosis(FailureClass.PIPELINE_FAILED, "activity 'extract' failed", "hint")
    kept = _failed_pass(other, [KILL])
    assert kept.failure_class is FailureClass.PIPELINE_FAILED
    assert kept.cause.startswith("with activities interrupted:")


def test_the_worker_running_an_activity_is_found_by_its_poller_identity() -> None:
    procs: list[Any] = [
        SimpleNamespace(pid=11, alive=lambda: True),
        SimpleNamespace(pid=12, alive=lambda: False),
    ]
    interrupter = Interrupter(
        connect=None,  # type: ignore[arg-type]
        workers=lambda: procs,
        replace=lambda p: p,
        forget=lambda p: None,
    )
    assert interrupter._owner("11@host") is procs[0]
    assert interrupter._owner("12@host") is None  # already dead
    assert interrupter._owner("custom-identity") is None


def _rehearsal(strategy: str = "rolling") -> Any:
    return SimpleNamespace(
        cfg=SimpleNamespace(strategy=strategy), log=["worker-green: SIGTERM"], resets=[]
    )


def test_rollout_nondeterminism_names_the_workflow_the_event_and_both_commands() -> None:
    message = (
        "Timer machine does not handle this event: HistoryEvent(id: 11, ActivityTaskScheduled)"
    )
    div = RolloutDivergence(16, parse_nondeterminism(message), "activity 'transform'", "a timer")
    flight = InFlight("wf-1", "run-1", "PipelineWorkflow")
    diagnosis = _nondeterminism(_rehearsal(), GreenTree("t" * 40, "c" * 40, None), flight, div)
    assert diagnosis.failure_class is FailureClass.ROLLOUT_NONDETERMINISM
    assert "PipelineWorkflow (id wf-1)" in diagnosis.cause and "event 11" in diagnosis.cause
    assert "cccccccccccc" in diagnosis.cause  # the last green commit
    assert "workflow.patched" in diagnosis.hint
    assert diagnosis.evidence[0].startswith("expected:") and "'transform'" in diagnosis.evidence[0]
    assert diagnosis.evidence[1].startswith("observed:")


def test_rollout_stuck_names_where_the_history_stopped() -> None:
    flight = InFlight("wf-1", "run-1", "PipelineWorkflow", events=pipeline_history(13))
    diagnosis = _stuck(_rehearsal(), flight, 31.0)
    assert diagnosis.failure_class is FailureClass.ROLLOUT_STUCK
    assert "no progress for 31s" in diagnosis.cause and "event 13" in diagnosis.cause
    assert "heartbeat_timeout" in diagnosis.hint


def test_a_pending_workflow_task_is_not_stuck_before_its_timeout_has_passed() -> None:
    cfg = SimpleNamespace(stuck_after=3.0)
    history = pipeline_history(15)  # ends at WorkflowTaskStarted
    history[0].workflow_execution_started_event_attributes.workflow_task_timeout.FromSeconds(10)
    history[-1].workflow_task_started_event_attributes.identity = "4444@old"
    flight = InFlight("wf-1", "run-1", "PipelineWorkflow", events=history)
    assert _patience(cfg, flight) == 15.0  # type: ignore[arg-type]  # the timeout + a margin
    assert "taken by 4444@old" in _stuck(_rehearsal(), flight, 16.0).cause
    flight.events = pipeline_history(13)  # an activity: the configured patience
    assert _patience(cfg, flight) == 3.0  # type: ignore[arg-type]
