"""The two services of an attached run: its database + role, and its namespace.

Neither starts a process. `start()` creates what the run owns on the cluster,
`wait_ready()` proves the app can use it (the role logs into its database; the namespace
serves requests), `stop()` removes it. The Temporal side is cleaned first: Postgres keeps
the role (the owner record) until the run's workflows are gone, so a teardown that fails
half way is finished by the next run's sweep.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING

from staging.errors import ConfigError, ServiceUnavailable
from staging.services.attach import namespaces, pg
from staging.services.attach.loop import in_thread
from staging.services.attach.records import OwnerRecord
from staging.services.base import PostgresEndpoint
from staging.services.connect import port_answers
from staging.services.process_binaries import temporal_binary
from staging.services.temporal_endpoint import TemporalEndpoint

if TYPE_CHECKING:
    from staging.services.attach.backend import AttachBackend

_POLL = 0.05
_STOP_WAIT = 60.0
_CLI_TIMEOUT = 5.0


def _cli_finds(endpoint: TemporalEndpoint) -> bool:
    """Whether the `temporal` CLI describes the shared namespace: the fast path while the
    SDK is still being imported (a second of CPU, on the warm-up thread). Plain endpoints
    only (the CLI is given no TLS or key); anything but success falls back to the SDK,
    which reports a missing namespace as such."""
    binary = temporal_binary()
    if binary is None or not endpoint.is_plain or "temporalio.client" in sys.modules:
        return False
    command = [str(binary), "operator", "namespace", "describe", "--address", endpoint.address]
    command += ["--namespace", endpoint.namespace, "-o", "json"]
    # Never a developer's profile or TEMPORAL_* settings: exactly this endpoint.
    command += ["--disable-config-file", "--disable-config-env"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    try:
        done = subprocess.run(
            command, env=env, stdin=subprocess.DEVNULL, capture_output=True,
            timeout=_CLI_TIMEOUT, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


class _AttachService:
    """What both services share: an event log (their "log tail") and a stopped flag."""

    name = "service"

    def __init__(self, backend: AttachBackend, record: OwnerRecord) -> None:
        self._backend, self._record = backend, record
        self._lock = threading.RLock()
        self._log: list[str] = []
        self._started = False
        self._stopped = False
        self._version = ""

    def _note(self, line: str) -> None:
        self._log.append(f"{time.strftime('%H:%M:%S')} {line}")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self._log[-lines:])

    def full_log(self) -> str:
        return "\n".join(self._log)

    def version(self) -> str:
        return self._version or f"{self.name} (attached)"

    def _stop_once(self) -> bool:
        """Mark stopped; True only for the first call on a service that had started (what
        it created is then this call's to remove)."""
        with self._lock:
            if self._stopped:
                return False
            self._stopped = True
            return self._started

    def _check_running(self) -> None:
        if self._stopped:
            raise ServiceUnavailable(
                f"{self.name} was stopped while starting",
                hint="another service of this run failed or the run was interrupted: see it",
            )


class AttachPostgres(_AttachService):
    name = "postgres"

    def __init__(self, backend: AttachBackend, record: OwnerRecord, password: str) -> None:
        super().__init__(backend, record)
        self._password = password
        self._admin = backend.target.admin

    def endpoint(self) -> PostgresEndpoint:
        r = self._record
        return PostgresEndpoint(
            self._admin.host, self._admin.port, r.role, self._password, r.database
        )

    def start(self) -> None:
        with self._lock:
            self._check_running()
            with pg.admin_connection(self._admin) as conn:
                self._version = (
                    pg.server_version(conn) + f" at {self._admin.host}:{self._admin.port}"
                )
                self._started = True  # from here on, stop() drops what exists
                pg.create_run_database(conn, self._record, self._password)
            self._note(f"created database {self._record.database} and role {self._record.role}")

    def wait_ready(self, timeout: float) -> None:
        """The run's role logs into its database: the grant works before the app needs it."""
        import psycopg  # imported already, by `pg`, under the import lock

        from staging.services.connect import open_postgres

        deadline = time.monotonic() + timeout
        while True:
            self._check_running()
            try:
                with open_postgres(self.endpoint(), connect_timeout=5) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() >= deadline:
                    raise ServiceUnavailable(
                        f"the run's role cannot log into its database {self._record.database}",
                        expected=f"role {self._record.role} connecting to {self._admin.host}:"
                        f"{self._admin.port}",
                        observed=(str(exc).strip().splitlines() or ["?"])[0],
                        hint="the server's pg_hba.conf must allow password (scram-sha-256) "
                        "logins from this machine for every role",
                    ) from None
                time.sleep(_POLL)

    def alive(self) -> bool:
        with self._lock:
            if self._stopped or not self._started:
                return False
        return port_answers(self._admin.host, self._admin.port)

    def stop(self) -> None:
        if not self._stop_once():
            return
        # The role is the record: keep it while the run's workflows may still exist.
        if not self._backend.temporal_clean.wait(_STOP_WAIT) or self._backend.temporal_failed:
            self._note("kept database and role: the Temporal side was not cleaned")
            raise RuntimeError(
                f"kept database {self._record.database} and role {self._record.role} (the "
                f"owner record) because the run's workflows were not cleaned: "
                f"{self._backend.temporal_failed or 'timed out'}; the next run's sweep "
                "removes them"
            )
        with pg.admin_connection(self._admin) as conn:
            pg.drop_run_database(conn, self._record.role, self._record.database)
        self._note(f"dropped database {self._record.database} and role {self._record.role}")


class AttachTemporal(_AttachService):
    name = "temporal"

    def endpoint(self) -> TemporalEndpoint:
        return self._backend.endpoint(self._record.namespace)

    def start(self) -> None:
        with self._lock:
            self._check_running()
            self._started = True
        if self._record.namespace_created:
            in_thread(self._register)
            self._note(f"registered namespace {self._record.namespace}")

    async def _register(self) -> None:
        client = await self._backend.client()()
        await namespaces.register(client, self._record.namespace, self._record)

    def wait_ready(self, timeout: float) -> None:
        if not self._record.namespace_created and _cli_finds(self.endpoint()):
            self._version = (
                f"temporal at {self.endpoint().address} (namespace {self.endpoint().namespace})"
            )
            return
        deadline = time.monotonic() + timeout
        name = self._record.namespace

        async def ready() -> bool:
            client = await self._backend.client(name)()
            if not await namespaces.exists(client, name):
                if not self._record.namespace_created:
                    raise ConfigError(
                        f"the namespace {name!r} of [tool.staging.attach] does not exist on "
                        f"{self.endpoint().address}",
                        expected=f"a registered namespace {name!r}",
                        observed="NOT_FOUND (or deleted)",
                        hint="create it on the cluster (`temporal operator namespace create`), "
                        "or set namespace_prefix to have staging create one per run",
                    )
                return False
            return await namespaces.usable(client, name)

        while not in_thread(ready):
            self._check_running()
            if time.monotonic() >= deadline:
                raise ServiceUnavailable(
                    f"the namespace {name!r} did not become usable",
                    expected=f"namespace {name!r} serving requests within {timeout:.0f}s",
                    observed="registered, but the frontend still answers NOT_FOUND",
                    hint="the cluster's namespace cache may be slow to refresh; raise the "
                    "run's timeout or use an existing namespace",
                )
            time.sleep(_POLL)
        if not self._version:
            self._version = f"temporal at {self.endpoint().address} (namespace {name})"

    def alive(self) -> bool:
        with self._lock:
            if self._stopped or not self._started:
                return False
        t = self._backend.target.temporal
        return port_answers(t.host, t.port)

    def stop(self) -> None:
        started = self._stop_once()
        try:
            if started:
                count = in_thread(lambda: self._backend.clean_temporal(self._record))
                self._note(f"terminated {count} running workflow(s)")
        except Exception as exc:
            self._backend.temporal_failed = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self._backend.temporal_clean.set()
