"""Readiness of a generic service: a protocol check polled tightly, never a sleep-and-hope.

- `tcp`: a connection is accepted *and held open* (or the server speaks first). Docker's
  userland proxy accepts on the published port before anything listens in the container,
  then closes at once: a bare connect would call that ready.
- `http`: GET the path; any status below 500 means a server answers.
- `command`: the command exits 0 (the backend says where it runs: on the host for the
  process backend, inside the container for docker).

On timeout: `services.unavailable` with the last observation and the log tail as evidence.
"""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Callable

from staging.errors import ServiceUnavailable
from staging.redact import Redactor
from staging.services.generic_spec import GenericSpec, substitute

POLL_INTERVAL = 0.05
_HELD_OPEN = 0.2  # seconds a connection must stay open to count as a server behind it

# One attempt: None when ready, else what was seen.
Probe = Callable[[], str | None]
# Runs a ready command: (argv, timeout) -> (exit code, output).
CommandRunner = Callable[[list[str], float], tuple[int, str]]


def probe_tcp(host: str, port: int) -> str | None:
    try:
        sock = socket.create_connection((host, port), timeout=1.0)
    except OSError as exc:
        return f"connect to {host}:{port}: {exc.strerror or exc}"
    with sock:
        sock.settimeout(_HELD_OPEN)
        try:
            data = sock.recv(1)
        except TimeoutError:
            return None  # held open: a server is there, waiting for us to speak
        except OSError as exc:
            return f"{host}:{port} reset the connection: {exc.strerror or exc}"
    if data:
        return None  # it spoke first (a banner)
    return f"{host}:{port} accepted and closed the connection at once (nothing behind it yet)"


def probe_http(host: str, port: int, path: str) -> str | None:
    connection = http.client.HTTPConnection(host, port, timeout=2.0)
    try:
        connection.request("GET", path)
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        return f"GET http://{host}:{port}{path}: {type(exc).__name__}: {exc}"
    finally:
        connection.close()
    return None if status < 500 else f"GET http://{host}:{port}{path} answered {status}"


def probe_command(run: CommandRunner, argv: list[str], remaining: float) -> str | None:
    code, output = run(argv, max(1.0, min(remaining, 10.0)))
    if code == 0:
        return None
    last = (output.strip().splitlines() or [""])[-1]
    return f"`{' '.join(argv)}` exited with code {code}" + (f": {last}" if last else "")


def probe_for(
    entry: GenericSpec,
    host: str,
    port: int,
    run: CommandRunner,
    *,
    command_host: str,
    command_port: int,
    deadline: float,
) -> Probe:
    """The one check `entry.ready` names, against `host:port` (the command gets
    `command_host` / `command_port`: where it runs, the service may have other ones)."""
    ready = entry.ready
    if ready.command:
        argv = [substitute(a, command_host, command_port) for a in ready.command]
        return lambda: probe_command(run, argv, deadline - time.monotonic())
    if ready.http is not None:
        path = ready.http
        return lambda: probe_http(host, port, path)
    return lambda: probe_tcp(host, port)


def wait_generic(
    entry: GenericSpec,
    address: str,
    probe: Probe,
    timeout: float,
    log_tail: Callable[[], str],
    *,
    abort: Callable[[], str | None] | None = None,
) -> None:
    """Block until `probe` passes; `ServiceUnavailable` with the log tail after `timeout`."""
    deadline = time.monotonic() + timeout
    last = "no attempt yet"
    while True:
        reason = abort() if abort else None
        if reason is not None:
            last = reason
            break
        seen = probe()
        if seen is None:
            return
        last = seen
        if time.monotonic() + POLL_INTERVAL >= deadline:
            break
        time.sleep(POLL_INTERVAL)
    try:
        tail = log_tail()
    except Exception as exc:  # the log is evidence, never the reason to fail differently
        tail = f"(log unavailable: {exc})"
    redact = Redactor()
    raise ServiceUnavailable(
        f"{entry.name} did not become ready",
        expected=f"{entry.ready.describe()} at {address} within {timeout:g}s",
        observed=redact(last),
        evidence=[f"{entry.name} log tail:\n{redact(tail)}"] if tail else [],
        hint=f"read the {entry.name} log tail below; a wrong port in the command, a port "
        "clash or a missing file shows there (ready_timeout in [[tool.staging.services]] "
        "gives a slow service more time)",
    )
