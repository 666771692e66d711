"""A service or the worker killed while a pipeline runs.

Postgres or Temporal gone mid-pipeline is the environment's fault: `services.lost`, exit 2,
never `pipeline.stuck_retrying` or `internal.error`, and never the tree's gate record. The
worker killed mid-activity is `worker.crashed` at once (not the pipeline's timeout), naming
the signal and the activity it was running. The kill lands while the slow `transform`
activity of `slow-but-fine` runs (its 3 s sleep), once Temporal shows it pending.
"""

from __future__ import annotations

import os
import signal

import pytest

from tests.faults.conftest import Case
from tests.faults.harness import activity_running, kill_service

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def _mid_activity(case: Case):  # type: ignore[no-untyped-def]
    run = case.run().start()
    run.wait_phase("pipelines")
    run.wait_until(lambda: activity_running(run, "transform"), "the transform activity")
    return run


@pytest.mark.parametrize("service", ["postgres", "temporal"])
def test_service_killed_mid_pipeline_is_services_lost(case: Case, service: str) -> None:
    run = _mid_activity(case)
    run_id = run.run_id()
    assert run_id is not None
    run.inject(lambda: kill_service(case.backend, case.state_dir, run_id, service))
    code = run.finish()
    found = case.leftovers(run)
    case.record(f"{service} killed mid-pipeline", run, code, found)
    assert code == 2, run.output()
    verdict = run.verdict()
    assert verdict is not None
    diagnosis = verdict["diagnosis"]
    assert diagnosis["class"] == "services.lost", run.output()
    assert service in diagnosis["cause"] and "pipelines phase" in diagnosis["cause"]
    # Never the tree's gate record: an infrastructure abort says nothing about the code.
    assert not list((case.app / ".staging" / "verdicts").glob("*.json"))
    assert found == [], found


def test_worker_killed_mid_activity_is_worker_crashed(case: Case) -> None:
    run = _mid_activity(case)
    verdict_dir = run.run_dir()
    assert verdict_dir is not None
    pid = _worker_pid(run)
    run.inject(lambda: os.kill(pid, signal.SIGKILL))
    code = run.finish()
    found = case.leftovers(run)
    case.record("worker killed mid-activity", run, code, found)
    assert code == 1, run.output()
    verdict = run.verdict()
    assert verdict is not None
    diagnosis = verdict["diagnosis"]
    assert diagnosis["class"] == "worker.crashed", run.output()
    assert "SIGKILL" in diagnosis["cause"] and "transform" in diagnosis["cause"]
    assert found == [], found


def _worker_pid(run) -> int:  # type: ignore[no-untyped-def]
    """The worker's pid from the run's console (the worker phase's summary line)."""
    import re

    for line in run.lines:
        found = re.search(r"worker\s.*\(pid (\d+)", line)
        if found:
            return int(found.group(1))
    raise AssertionError(f"no worker pid on the console:\n{run.output()}")
