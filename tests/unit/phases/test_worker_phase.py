"""The worker phase alone: worker processes faked, Temporal's poller answer faked."""

from __future__ import annotations

from pathlib import Path

import pytest

import staging.phases.worker as worker_module
from staging.phases.worker import worker_phase
from staging.result import FailureClass, Status
from staging.temporal.pollers import PollerResult
from tests.unit.phases.fakes import WORKER, FakeRun, Script, fake_run


def answer(monkeypatch: pytest.MonkeyPatch, reason: str) -> list[str]:
    """Temporal reports `reason` for every queue; returns the queues asked about."""
    asked: list[str] = []

    async def client(*args: object, **kwargs: object) -> object:
        return object()

    async def wait_for_poller(_client: object, queue: str, **kwargs: object) -> PollerResult:
        asked.append(queue)
        ready = reason == "polling"
        pollers = ("123@host",) if ready else ()
        return PollerResult(ready, reason, queue, pollers=pollers, waited=0.5)  # type: ignore[arg-type]

    monkeypatch.setattr(worker_module, "temporal_client", client)
    monkeypatch.setattr(worker_module, "wait_for_poller", wait_for_poller)
    return asked


def test_a_polling_worker_passes_and_is_recorded_for_teardown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = answer(monkeypatch, "polling")
    ctx = fake_run(tmp_path, scripts={"worker": Script(None)})
    result = worker_phase(ctx)
    assert result.status is Status.PASSED, result.diagnosis
    assert asked == ["q"]
    assert ctx.workers == ctx.spawned and ctx.worker is ctx.spawned[0]
    assert result.details["pid"] == ctx.spawned[0].pid


def test_every_replica_of_every_worker_starts_first_ones_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer(monkeypatch, "polling")
    table = {
        "workers": [
            {"name": "a", "command": ["python", "-m", "a"], "task_queue": "qa"},
            {"name": "b", "command": ["python", "-m", "b"], "task_queue": "qb"},
        ]
    }
    ctx = fake_run(tmp_path, table, scripts={"worker": Script(None)})
    result = worker_phase(ctx)
    assert result.status is Status.PASSED, result.diagnosis
    assert [w.name for w in ctx.workers] == ["worker-a", "worker-b"]


def test_a_worker_that_exits_is_worker_crashed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer(monkeypatch, "exited")
    output = "Traceback (most recent call last):\nModuleNotFoundError: No module named 'app.wrk'"
    ctx = fake_run(tmp_path, scripts={"worker": Script(1, output)})
    result = worker_phase(ctx)
    assert result.status is Status.FAILED and result.diagnosis is not None
    assert result.diagnosis.failure_class is FailureClass.WORKER_CRASHED
    assert any("app.wrk" in line for line in result.diagnosis.evidence)
    assert ctx.workers == ctx.spawned  # teardown still knows it


def test_a_worker_that_never_polls_is_not_ready(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer(monkeypatch, "timeout")
    ctx = fake_run(tmp_path, scripts={"worker": Script(None, "connected to 127.0.0.1:7233")})
    result = worker_phase(ctx)
    assert result.diagnosis is not None
    assert result.diagnosis.failure_class is FailureClass.WORKER_NOT_POLLING
    assert "'q'" in result.diagnosis.cause


def test_rejected_credentials_at_start_are_db_auth_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer(monkeypatch, "exited")
    output = 'FATAL:  password authentication failed for user "app"'
    result = worker_phase(fake_run(tmp_path, scripts={"worker": Script(1, output)}))
    assert result.diagnosis is not None
    assert result.diagnosis.failure_class is FailureClass.DB_AUTH_FAILED


def test_a_worker_that_cannot_start_leaves_the_started_ones_to_teardown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer(monkeypatch, "polling")
    table = {"workers": [{**WORKER, "name": "a", "replicas": 3}]}
    ctx = fake_run(tmp_path, table, scripts={"worker": Script(None)})
    real_spawn = FakeRun.spawn

    def spawn(self: FakeRun, name: str, command: list[str], role: str, cwd: str = ".") -> object:
        if name.endswith("-3"):
            raise OSError("fork failed")
        return real_spawn(self, name, command, role, cwd)

    monkeypatch.setattr(FakeRun, "spawn", spawn)
    with pytest.raises(OSError):
        worker_phase(ctx)
    assert [w.name for w in ctx.workers] == ["worker-1", "worker-2"]
    assert ctx.worker is ctx.workers[0]
