"""The checks phase alone: the database's answers to each check faked, notifications faked."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import staging.phases.checks as checks_module
from staging.context import PipelineRecord
from staging.phases.checks import CheckVerdict, checks_phase
from staging.result import FailureClass, Status
from tests.unit.phases.fakes import WORKER, FakeRun, fake_run

HOLDS = "select count(*) > 0 from conversions"
FAILS = "select count(*) = 0 from dead_letters"


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Postgres faked: HOLDS is true, anything else false; returns the checks asked."""
    asked: list[str] = []

    @contextmanager
    def connection(endpoint: object) -> Iterator[object]:
        yield object()

    def judge(conn: object, check: str) -> CheckVerdict:
        asked.append(check)
        return CheckVerdict(True, True) if check == HOLDS else CheckVerdict(False, False, "false")

    monkeypatch.setattr(checks_module, "read_only_connection", connection)
    monkeypatch.setattr(checks_module, "judge_check", judge)
    return asked


def ran(tmp_path: Path, checks: list[str], notifications: int = 0, limit: int = 5) -> FakeRun:
    pipeline = {
        "name": "load",
        "command": ["python", "-m", "app.load"],
        "checks": checks,
        "max_notifications": limit,
    }
    ctx = fake_run(tmp_path, {"worker": WORKER, "pipelines": [pipeline]})
    ctx.pipelines.append(PipelineRecord("load", "passed", notifications=notifications))
    ctx.sent.extend({"name": "SLACK", "json": {"text": f"n{i}"}} for i in range(notifications))
    return ctx


def test_checks_that_hold_pass(tmp_path: Path, database: list[str]) -> None:
    ctx = ran(tmp_path, [HOLDS, HOLDS])
    result = checks_phase(ctx)
    assert result.status is Status.PASSED, result.diagnosis
    assert database == [HOLDS, HOLDS]
    assert [c["ok"] for c in ctx.pipelines[0].checks] == [True, True]


def test_a_check_that_does_not_hold_is_check_failed(tmp_path: Path, database: list[str]) -> None:
    result = checks_phase(ran(tmp_path, [HOLDS, FAILS, HOLDS]))
    assert result.status is Status.FAILED and result.diagnosis is not None
    assert result.diagnosis.failure_class is FailureClass.CHECK_FAILED
    assert FAILS in result.diagnosis.cause
    assert database == [HOLDS, FAILS]  # the first failure decides


def test_too_many_notifications_fail_before_any_query(tmp_path: Path, database: list[str]) -> None:
    result = checks_phase(ran(tmp_path, [HOLDS], notifications=3, limit=1))
    assert result.diagnosis is not None
    assert result.diagnosis.failure_class is FailureClass.NOTIFICATIONS_FLOOD
    assert "sent 3 notification(s); the limit is 1" in result.diagnosis.cause
    assert any("SLACK" in line for line in result.diagnosis.evidence)
    assert database == []


def test_nothing_ran_is_skipped(tmp_path: Path, database: list[str]) -> None:
    ctx = fake_run(tmp_path)
    assert checks_phase(ctx).status is Status.SKIPPED
