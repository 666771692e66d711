"""Saving a run's workflow histories: CLI-compatible files, never one holding a secret."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from temporalio.client import Client, WorkflowHistory

from staging.history_export import export_histories, history_filename, holds_secret
from staging.redact import Redactor
from tests.corpus import APP

SUCCEEDED = APP / "tests" / "histories" / "pipeline-succeeded.json"
HOSTILE = "p@ss:w/rd%#'\" x"


@dataclass
class Execution:
    id: str
    run_id: str
    workflow_type: str
    start_time: datetime


class FakeHandle:
    def __init__(self, history: WorkflowHistory) -> None:
        self.history = history

    async def fetch_history(self) -> WorkflowHistory:
        return self.history


class FakeClient:
    """The two calls export_histories makes, over canned histories."""

    def __init__(self, runs: list[tuple[Execution, dict[str, Any]]]) -> None:
        self.runs = runs
        self.queries: list[str | None] = []

    async def _list(self) -> AsyncIterator[Execution]:
        for execution, _ in self.runs:
            yield execution

    def list_workflows(self, query: str | None = None) -> AsyncIterator[Execution]:
        self.queries.append(query)
        return self._list()

    def get_workflow_handle(self, workflow_id: str, *, run_id: str | None = None) -> FakeHandle:
        for execution, doc in self.runs:
            if (execution.id, execution.run_id) == (workflow_id, run_id):
                return FakeHandle(WorkflowHistory.from_json(workflow_id, doc))
        raise AssertionError(f"unexpected handle {workflow_id} {run_id}")


def recorded() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(SUCCEEDED.read_text(encoding="utf-8"))
    return doc


def with_input(doc: dict[str, Any], value: str) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    payload = doc["events"][0]["workflowExecutionStartedEventAttributes"]["input"]["payloads"][0]
    payload["data"] = base64.b64encode(json.dumps(value).encode()).decode()
    return doc


def run(client: FakeClient, dest: Path, **kwargs: Any) -> list[Path]:
    return asyncio.run(export_histories(cast(Client, client), dest, **kwargs))


def test_filenames_are_safe_and_unique() -> None:
    taken: set[str] = set()
    assert (
        history_filename("everflow-everflow-1a2b", "run-1", taken) == "everflow-everflow-1a2b.json"
    )
    assert history_filename("everflow-everflow-1a2b", "0123456789", taken) == (
        "everflow-everflow-1a2b-01234567.json"
    )
    assert history_filename("a/b c:d", "r", taken) == "a_b_c_d.json"
    assert history_filename("../..", "r", taken) == "workflow.json"


def test_exported_files_are_what_the_temporal_cli_writes(tmp_path: Path) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    first = Execution("wf-b", "run-b", "PipelineWorkflow", start + timedelta(seconds=1))
    second = Execution("wf-a", "run-a", "PipelineWorkflow", start)
    client = FakeClient([(first, recorded()), (second, recorded())])
    paths = run(client, tmp_path / "out")
    # In start order, one file per run, named by workflow id.
    assert [p.name for p in paths] == ["wf-a.json", "wf-b.json"]
    assert client.queries == [None]
    for path in paths:
        assert json.loads(path.read_text()) == recorded()
    assert not list((tmp_path / "out").glob(".*.tmp"))


def test_a_history_holding_a_secret_is_not_written(tmp_path: Path) -> None:
    redactor = Redactor([HOSTILE])
    leaky = with_input(recorded(), f"postgresql://app:{HOSTILE}@db/app")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    client = FakeClient(
        [
            (Execution("wf-leaky", "r1", "PipelineWorkflow", start), leaky),
            (Execution("wf-clean", "r2", "PipelineWorkflow", start), recorded()),
        ]
    )
    events: list[str] = []
    paths = run(client, tmp_path, redactor=redactor, on_event=events.append)
    assert [p.name for p in paths] == ["wf-clean.json"]
    assert len(events) == 1 and "wf-leaky" in events[0] and "secret" in events[0]
    assert HOSTILE not in events[0]


def test_holds_secret_looks_inside_payloads_and_plain_text() -> None:
    redactor = Redactor([HOSTILE])
    assert not holds_secret(recorded(), redactor)
    assert holds_secret(with_input(recorded(), HOSTILE), redactor)
    doc = recorded()
    doc["events"][-1]["note"] = f"failed: {HOSTILE}"
    assert holds_secret(doc, redactor)
