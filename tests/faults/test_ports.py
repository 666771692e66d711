"""A run's port already taken: by a foreign Temporal server, and by a plain listener.

`STAGING_TEST_<SERVICE>_PORT` (the services' test hook, staging/services/ports.py) makes the
service ask for a port the test holds. The run must abort `services.unavailable` (exit 2)
at once, naming the clash, and never run the app's workflows on the foreign server.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.conftest import Case
from tests.faults.harness import port_answers

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def foreign_temporal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """Somebody else's Temporal dev server, started once for both backends."""
    binary = shutil.which("temporal") or str(Path(sys.prefix) / "bin" / "temporal")
    port, http = _free_port(), _free_port()
    log = (tmp_path_factory.mktemp("foreign") / "temporal.log").open("wb")
    command = [binary, "server", "start-dev", "--headless", "--ip", "127.0.0.1"]
    command += ["--port", str(port), "--http-port", str(http), "--log-level", "error"]
    proc = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not port_answers(port):  # a readiness poll of the listener, not a sleep
            assert proc.poll() is None, "the foreign Temporal server did not start"
            assert time.monotonic() < deadline, "the foreign Temporal server never listened"
            time.sleep(0.05)
        yield port
    finally:
        proc.kill()
        proc.wait(timeout=30)
        log.close()


@pytest.fixture
def plain_listener() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def _clash(case: Case, fault: str, service: str, port: int) -> None:
    env = {f"STAGING_TEST_{service.upper()}_PORT": str(port)}
    run = case.run(env=env).start()
    run.wait_phase("services")
    run.inject(lambda: None)  # the port is taken before the services start
    code = run.finish()
    found = [f for f in case.leftovers(run) if f != f"port {port} still answers"]
    case.record(fault, run, code, found)
    assert code == 2, run.output()
    assert run.failure_class() == "services.unavailable", run.output()
    assert str(port) in run.output()
    assert "pipelines" not in run.finished_phases  # nothing ran on the foreign server
    assert found == [], found


def test_temporal_port_taken_by_a_foreign_temporal(case: Case, foreign_temporal: int) -> None:
    _clash(case, "Temporal port taken by a foreign Temporal", "temporal", foreign_temporal)


def test_postgres_port_taken_by_a_plain_listener(case: Case, plain_listener: int) -> None:
    _clash(case, "Postgres port taken by a plain listener", "postgres", plain_listener)
