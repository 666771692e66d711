"""The replay probe's pieces and its runner's fast paths (no app import, no services).

The probe against the example app's real histories and corpus cases is exercised in
tests/integration/test_replay.py (each run imports the app and temporalio: seconds).
"""

from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from staging.errors import ConfigError
from staging.probes import replay_probe
from staging.replay import (
    ReplayReport,
    diagnose,
    find_histories,
    run_replay_probe,
    worker_target,
)
from staging.result import FailureClass
from tests.corpus import APP

HISTORIES = sorted((APP / "tests" / "histories").glob("*.json"))


def app_env() -> dict[str, str]:
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def history_doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(HISTORIES[-1].read_text(encoding="utf-8"))
    return doc


def test_the_example_ships_a_succeeded_and_a_failed_history() -> None:
    names = [h.name for h in HISTORIES]
    assert names == ["pipeline-failed-at-load.json", "pipeline-succeeded.json"]
    for path in HISTORIES:
        first = json.loads(path.read_text())["events"][0]
        assert first["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"
        attrs = first["workflowExecutionStartedEventAttributes"]
        assert attrs["workflowType"]["name"] == "PipelineWorkflow"


def test_undiscoverable_worker_command_asks_for_workflows(tmp_path: Path) -> None:
    report = run_replay_probe(
        sys.executable, tmp_path, app_env(), HISTORIES, worker_command=["everflow-worker"]
    )
    diagnosis = diagnose(report, app_dir=APP)
    assert diagnosis is not None
    assert diagnosis.failure_class is FailureClass.CONFIG_INVALID
    assert "tool.staging.replay.workflows" in diagnosis.cause
    assert "everflow-worker" in diagnosis.cause


def test_an_interpreter_that_cannot_start_is_reported(tmp_path: Path) -> None:
    report = run_replay_probe(
        str(tmp_path / "no-python"), tmp_path, app_env(), HISTORIES, workflows=["a:B"]
    )
    diagnosis = diagnose(report, app_dir=APP)
    assert diagnosis is not None
    assert diagnosis.failure_class is FailureClass.CONFIG_INVALID
    assert "ProbeNotStarted" in diagnosis.cause


# --- reading history files (the probe's own functions) ----------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"events": [', "not valid JSON"),
        ('["not", "a", "history"]', "no 'events' list at the top level"),
        ('{"events": []}', "the 'events' list is empty"),
        ('{"events": [{"eventId": "x"}]}', "do not parse as Temporal history events"),
    ],
)
def test_unreadable_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "h.json"
    path.write_text(content)
    with pytest.raises(replay_probe.Unreadable, match=message):
        replay_probe.load_history(str(path))


def test_a_history_cut_before_its_start_event_is_unreadable(tmp_path: Path) -> None:
    doc = history_doc()
    doc["events"] = doc["events"][1:]
    path = tmp_path / "partial.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(replay_probe.Unreadable, match="not WorkflowExecutionStarted"):
        replay_probe.load_history(str(path))


def test_workflow_id_comes_from_the_start_event_else_the_file_name(tmp_path: Path) -> None:
    facts, _ = replay_probe.load_history(str(HISTORIES[-1]))
    assert facts["workflow_id"].startswith("everflow-everflow-")
    assert facts["workflow_type"] == "PipelineWorkflow"
    assert facts["events"] == 23
    old_server = copy.deepcopy(history_doc())
    del old_server["events"][0]["workflowExecutionStartedEventAttributes"]["workflowId"]
    path = tmp_path / "wf-from-an-old-server.json"
    path.write_text(json.dumps(old_server))
    facts, history = replay_probe.load_history(str(path))
    assert facts["workflow_id"] == history.workflow_id == "wf-from-an-old-server"


def test_event_type_names_match_the_sdk_core_spelling() -> None:
    assert replay_probe.camel("EVENT_TYPE_ACTIVITY_TASK_SCHEDULED") == "ActivityTaskScheduled"
    assert replay_probe.camel("EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED") == (
        "WorkflowExecutionCompleted"
    )


# --- the host side -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "target"),
    [
        (["python", "-m", "everflow.worker"], ("module", "everflow.worker")),
        (
            ["/venv/bin/python3", "-u", "-X", "dev", "-m", "app.worker", "--flag"],
            ("module", "app.worker"),
        ),
        (["python", "worker.py"], ("script", "worker.py")),
        (["everflow-worker"], None),
        (["python", "-c", "print(1)"], None),
        ([], None),
    ],
)
def test_worker_target(command: list[str], target: tuple[str, str] | None) -> None:
    assert worker_target(command) == target


def test_find_histories_sorts_and_dedupes(tmp_path: Path) -> None:
    (tmp_path / "h").mkdir()
    for name in ("b.json", "a.json"):
        (tmp_path / "h" / name).write_text("{}")
    found = find_histories(tmp_path, ["h/*.json", "h/a.json"], pyproject=tmp_path / "p.toml")
    assert [p.name for p in found] == ["a.json", "b.json"]


def test_a_glob_matching_nothing_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        find_histories(tmp_path, ["tests/histories/*.json"], pyproject=tmp_path / "pyproject.toml")
    assert "tool.staging.replay.histories" in err.value.message
    assert "'tests/histories/*.json' matches no file" in err.value.message
    assert "staging run --record" in err.value.hint


def test_report_parsing_tolerates_a_sparse_document() -> None:
    report = ReplayReport.from_json({"ok": True, "histories": [{"file": "x.json", "ok": True}]})
    assert report.ok and report.histories[0].file == "x.json" and report.histories[0].ok
