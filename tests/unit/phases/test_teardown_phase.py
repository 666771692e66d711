"""Teardown alone, after a run that stopped at each point: it stops what was started and
only that, says nothing when all goes well, survives a failing step, and runs twice."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest

from staging.context import ServicesDone, WorkspaceDone
from staging.phases.teardown import teardown
from staging.result import Diagnosis, FailureClass, Status
from staging.runner import RunOutcome
from tests.unit.phases.fakes import (
    FakeCaptures,
    FakeProcess,
    FakeRun,
    FakeWorkspace,
    Script,
    fake_run,
)

FAILED = RunOutcome(
    Status.FAILED, 1, [], Diagnosis(FailureClass.WORKER_CRASHED, "worker died", "fix it")
)


def warnings(ctx: FakeRun) -> list[str]:
    return [str(e.payload) for e in ctx.sink.events if e.kind == "warn"]


def with_worker(ctx: FakeRun) -> FakeProcess:
    worker = FakeProcess("worker", ["python"], Script(None), ctx.logs_dir)
    ctx.workers, ctx.worker = [worker], worker
    return worker


@pytest.mark.parametrize("upto", ["config", "services", "workspace"])
def test_a_partial_start_is_torn_down_twice_without_a_word(tmp_path: Path, upto: str) -> None:
    ctx = fake_run(tmp_path, upto=upto)
    cleaned: list[str] = []
    ctx.cleanups.append(lambda: cleaned.append("prefetch"))
    worker = with_worker(ctx) if upto == "workspace" else None
    teardown(ctx, FAILED)
    teardown(ctx, FAILED)
    assert warnings(ctx) == []
    assert cleaned == ["prefetch", "prefetch"]
    if worker is not None:
        assert not worker.alive() and worker.returncode == -15
    services = ctx.get(ServicesDone)
    if services is not None:
        assert ctx.env.stopped >= 1 and cast(FakeCaptures, services.captures).stopped >= 1
        assert ctx.env.saved_logs == [ctx.logs_dir] * 2
    done = ctx.get(WorkspaceDone)
    if done is not None:
        assert cast(FakeWorkspace, done.workspace).removed >= 1


def test_one_failing_step_is_named_and_the_rest_still_run(tmp_path: Path) -> None:
    ctx = fake_run(tmp_path)
    worker = with_worker(ctx)

    def broken() -> None:
        raise RuntimeError("cannot stop the prefetch")

    ctx.cleanups.append(broken)
    teardown(ctx, FAILED)
    assert warnings(ctx) == [
        "teardown of background work failed: RuntimeError: cannot stop the prefetch"
    ]
    assert not worker.alive() and ctx.env.stopped == 1


def test_a_run_that_never_loaded_its_config_has_nothing_to_stop(tmp_path: Path) -> None:
    ctx = fake_run(tmp_path, upto="config")
    ctx.products.clear()
    teardown(ctx, FAILED)
    assert warnings(ctx) == []
