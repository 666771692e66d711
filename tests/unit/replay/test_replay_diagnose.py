"""From the probe's JSON to one diagnosis: classes, precedence, notes, the table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from staging.replay import ReplayReport, diagnose, history_rows, replay_notes
from staging.result import FailureClass

APP = Path("/srv/app")
CAPTURED: dict[str, dict[str, Any]] = json.loads(
    (Path(__file__).parent / "core_messages.json").read_text(encoding="utf-8")
)


def entry(name: str, **error: Any) -> dict[str, Any]:
    base = {
        "file": f"/srv/app/tests/histories/{name}.json",
        "workflow_id": f"wf-{name}",
        "workflow_type": "PipelineWorkflow",
        "run_id": "r-1",
        "events": 23,
        "ok": not error,
    }
    if error:
        base["error"] = error
    return base


def captured(name: str) -> dict[str, Any]:
    fixture = CAPTURED[name]
    kind = "nondeterminism" if fixture["type"] == "NondeterminismError" else "task_failed"
    error: dict[str, Any] = {"kind": kind, "type": fixture["type"], "message": fixture["raw"]}
    if "task" in fixture:
        error["task"] = fixture["task"]
    return error


def report(*histories: dict[str, Any], **extra: Any) -> ReplayReport:
    doc = {
        "ok": True,
        "workflows": [{"name": "PipelineWorkflow", "class": "app.workflows:PipelineWorkflow"}],
        "discovery": "worker app.worker",
        "runner": "sandboxed",
        "notes": [],
        "histories": list(histories),
        **extra,
    }
    return ReplayReport.from_json(doc)


def test_all_green_is_no_diagnosis() -> None:
    assert diagnose(report(entry("a"), entry("b")), app_dir=APP) is None


def test_nondeterminism_outranks_an_unreadable_file_and_both_are_listed() -> None:
    unreadable = {"kind": "unreadable", "type": "Unreadable", "message": "not valid JSON: x"}
    result = report(
        entry("broken", **unreadable), entry("swapped", **captured("activity_type_mismatch"))
    )
    diagnosis = diagnose(result, app_dir=APP)
    assert diagnosis is not None
    assert diagnosis.failure_class is FailureClass.REPLAY_NONDETERMINISM
    assert diagnosis.cause == (
        "tests/histories/swapped.json (workflow wf-swapped, type PipelineWorkflow) no longer "
        "replays against this code: at event 11 (ActivityTaskScheduled): the history has "
        "activity type 'transform', but the code now issues activity type 'load'"
    )
    assert "also: tests/histories/broken.json [unreadable]: not valid JSON: x" in (
        diagnosis.evidence
    )
    assert "diverging workflow task: the one completed at event 10" in diagnosis.evidence
    assert "staging replay tests/histories/swapped.json" in diagnosis.hint


def test_an_unreadable_file_alone_is_a_config_error_naming_it() -> None:
    unreadable = {
        "kind": "unreadable",
        "type": "Unreadable",
        "message": "the 'events' list is empty",
    }
    diagnosis = diagnose(report(entry("empty", **unreadable)), app_dir=APP)
    assert diagnosis is not None
    assert diagnosis.failure_class is FailureClass.CONFIG_INVALID
    assert diagnosis.cause == (
        "tests/histories/empty.json is not a readable workflow history: the 'events' list is empty"
    )


def test_workflow_code_raising_on_replay_is_a_replay_failure() -> None:
    diagnosis = diagnose(report(entry("raises", **captured("workflow_raises"))), app_dir=APP)
    assert diagnosis is not None
    assert diagnosis.failure_class is FailureClass.REPLAY_NONDETERMINISM
    assert diagnosis.cause.endswith(
        "the workflow code now fails while replaying it: boom in workflow code"
    )


def test_divergence_at_a_closed_workflows_end_is_a_note_unless_strict() -> None:
    result = report(entry("flood", **captured("activity_machine_at_close")))
    assert result.histories[0].at_close
    assert diagnose(result, app_dir=APP) is None
    (note,) = replay_notes(result, app_dir=APP)
    assert note.startswith("tests/histories/flood.json: the code now ends PipelineWorkflow")
    assert "at event 23, where the history has WorkflowExecutionCompleted" in note
    assert replay_notes(result, app_dir=APP, strict=True) == []
    strict = diagnose(result, app_dir=APP, strict=True)
    assert strict is not None
    assert "(where the recorded workflow ended)" in strict.cause


def test_the_last_task_of_an_open_workflow_is_not_forgiven() -> None:
    error = captured("activity_machine_at_close")
    error["task"] = {**error["task"], "closes_workflow": False}
    diagnosis = diagnose(report(entry("open", **error)), app_dir=APP)
    assert diagnosis is not None
    assert diagnosis.failure_class is FailureClass.REPLAY_NONDETERMINISM


@pytest.mark.parametrize(
    ("error", "failure_class", "words"),
    [
        (
            {"stage": "temporalio", "type": "ModuleNotFoundError", "message": "no temporalio"},
            FailureClass.CONFIG_INVALID,
            "cannot run the replay",
        ),
        (
            {"stage": "config", "type": "NoWorkflows", "message": "no @workflow.defn class"},
            FailureClass.CONFIG_INVALID,
            "tool.staging.replay.workflows: no @workflow.defn class",
        ),
        (
            {
                "stage": "import",
                "type": "ImportError",
                "message": "cannot import name 'x'",
                "traceback": ["Traceback (most recent call last):", "ImportError: x"],
            },
            FailureClass.WORKER_CRASHED,
            "importing the app's workflow code for the replay failed",
        ),
        (
            {"stage": "replay", "type": "ValueError", "message": "More than one workflow"},
            FailureClass.WORKER_CRASHED,
            "building a Replayer",
        ),
        (
            {"stage": "run", "type": "ProbeTimeout", "message": "did not finish"},
            FailureClass.WORKER_CRASHED,
            "ProbeTimeout",
        ),
        (
            {"stage": "run", "type": "ProbeCrashed", "message": "wrote no report"},
            FailureClass.INTERNAL_ERROR,
            "the replay probe failed",
        ),
    ],
)
def test_probe_failures(error: dict[str, Any], failure_class: FailureClass, words: str) -> None:
    result = ReplayReport.from_json({"ok": False, "error": error, "histories": []})
    diagnosis = diagnose(result, app_dir=APP)
    assert diagnosis is not None
    assert diagnosis.failure_class is failure_class
    assert words in diagnosis.cause
    if error.get("traceback"):
        assert "ImportError: x" in diagnosis.evidence


def test_history_rows() -> None:
    result = report(
        entry("a"),
        entry("flood", **captured("activity_machine_at_close")),
        entry("swapped", **captured("activity_type_mismatch")),
    )
    rows = history_rows(result, app_dir=APP)
    assert [r["status"] for r in rows] == ["ok", "ok (differs at close)", "nondeterminism"]
    assert rows[0] == {
        "file": "tests/histories/a.json",
        "workflow_id": "wf-a",
        "workflow_type": "PipelineWorkflow",
        "events": "23",
        "status": "ok",
        "detail": "",
    }
    assert rows[2]["detail"].startswith("at event 11")
