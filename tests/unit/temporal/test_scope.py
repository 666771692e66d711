"""`RunScope`: the visibility query every workflow scan of a run uses.

The queries' meaning on a real server (a foreign workflow stays unseen) is proven in
tests/integration/test_temporal_scope.py; here, their text, the quoting, and that every
scan in staging/ goes through a scope.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

import staging
from staging.config.model import StagingConfig
from staging.errors import ConfigError
from staging.services.base import TemporalEndpoint
from staging.temporal.scope import WHOLE_NAMESPACE, RunScope, quote

RUNNING = "ExecutionStatus='Running'"
ROOT = Path(staging.__file__).parent


def config(**extra: object) -> StagingConfig:
    data: dict[str, object] = {
        "workers": [
            {"name": "orders", "command": ["python", "-m", "w"], "task_queue": "orders-r1"},
            {"name": "mail", "command": ["python", "-m", "m"], "task_queue": "emails-r1"},
        ],
        "pipelines": [
            {"name": "a", "command": ["python", "a.py"]},
            {"name": "b", "command": ["python", "b.py"], "task_queue": "orders-r1"},
            {"name": "c", "command": ["python", "c.py"], "task_queue": "billing-r1"},
        ],
    }
    data.update(extra)
    return StagingConfig.model_validate(data)


def test_the_whole_namespace_adds_no_filter() -> None:
    assert WHOLE_NAMESPACE.query() is None
    assert WHOLE_NAMESPACE.query(RUNNING) == RUNNING
    assert WHOLE_NAMESPACE.query(None, RUNNING) == RUNNING


def test_one_task_queue() -> None:
    scope = RunScope(task_queues=("orders-r1",))
    assert scope.query() == "TaskQueue = 'orders-r1'"
    assert scope.query(RUNNING) == f"(TaskQueue = 'orders-r1') AND ({RUNNING})"


def test_queues_and_workflow_ids_are_either_or() -> None:
    scope = RunScope(task_queues=("a", "b"), workflow_ids=("wf-1",))
    assert scope.query() == "(TaskQueue IN ('a', 'b') OR WorkflowId = 'wf-1')"
    assert scope.query("WorkflowType = 'X'", RUNNING) == (
        "((TaskQueue IN ('a', 'b') OR WorkflowId = 'wf-1')) AND (WorkflowType = 'X') "
        f"AND ({RUNNING})"
    )


def test_a_single_quote_is_escaped() -> None:
    assert quote("o'brien") == "'o\\'brien'"


@pytest.mark.parametrize("name", ['a"b', "a\\b", "a\nb"])
def test_a_name_the_visibility_syntax_cannot_match_is_refused(name: str) -> None:
    with pytest.raises(ConfigError) as info:
        RunScope(task_queues=(name,))
    assert info.value.hint is not None and "rename the task queue" in info.value.hint


def test_an_empty_scope_is_refused_it_would_hide_every_failure() -> None:
    with pytest.raises(ValueError, match="whole_namespace"):
        RunScope()


def test_a_namespace_the_run_owns_is_scanned_whole() -> None:
    own = TemporalEndpoint("127.0.0.1", 7233, "default")
    assert RunScope.of_run(config(), own) == WHOLE_NAMESPACE


def test_a_shared_namespace_is_scanned_by_the_runs_task_queues() -> None:
    shared = TemporalEndpoint("10.0.0.5", 7233, "staging", namespace_shared=True)
    scope = RunScope.of_run(config(), shared, workflow_ids=["wf-1", "wf-1"])
    assert scope.task_queues == ("orders-r1", "emails-r1", "billing-r1")
    assert scope.workflow_ids == ("wf-1",)
    assert scope.with_workflow_ids(["wf-2", "wf-1"]).workflow_ids == ("wf-1", "wf-2")
    assert WHOLE_NAMESPACE.with_workflow_ids(["wf-2"]) == WHOLE_NAMESPACE


def _calls(attr: str) -> list[tuple[str, ast.Call]]:
    """(file:line, call) of every `<something>.<attr>(...)` in staging/."""
    return [(where, call) for where, call in _method_calls() if call.func.attr == attr]  # type: ignore[attr-defined]


@functools.cache
def _method_calls() -> tuple[tuple[str, ast.Call], ...]:
    return tuple(
        (f"{path.relative_to(ROOT)}:{node.lineno}", node)
        for path in sorted(ROOT.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    )


def _is_scope_query(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "query"
    )


def test_every_workflow_scan_in_staging_goes_through_a_scope() -> None:
    calls = _calls("list_workflows")
    assert len(calls) >= 6  # watch (2), failures, history export, kill, rehearsal (2)
    unscoped = [where for where, call in calls if not (call.args and _is_scope_query(call.args[0]))]
    assert unscoped == [], "list_workflows without RunScope.query(...)"


def test_client_connect_is_called_in_one_place() -> None:
    callers = [
        where.split(":")[0]
        for where, call in _calls("connect")
        if isinstance(call.func, ast.Attribute)
        and isinstance(call.func.value, ast.Name)
        and call.func.value.id == "Client"
    ]
    assert callers == ["services/temporal_endpoint.py"]


def test_a_shared_namespace_sees_the_runs_suffixed_queues_only() -> None:
    cfg = config()
    cfg.suffix_task_queues("-run42")
    shared = TemporalEndpoint("10.0.0.5", 7233, "staging", namespace_shared=True)
    assert RunScope.of_run(cfg, shared).task_queues == (
        "orders-r1-run42",
        "emails-r1-run42",
        "billing-r1-run42",
    )
