"""The contract between a run and its services.

A backend (docker / process) creates two `Service`s; `Environment` starts them in
parallel, waits for protocol-level readiness and stops them. Endpoints are plain
frozen values: everything a run needs to render `{postgres.*}` / `{temporal.*}`.
"""

from __future__ import annotations

import os
import shlex
import socket
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable
from urllib.parse import quote

LABEL_RUN = "staging.run"
LABEL_OWNER = "staging.owner"


def owner_id(pid: int | None = None) -> str:
    """`<host>:<pid>`: who owns a resource, so a sweep can tell live runs from dead ones."""
    return f"{socket.gethostname()}:{pid if pid is not None else os.getpid()}"


@dataclass(frozen=True)
class PostgresEndpoint:
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    database: str

    @property
    def url(self) -> str:
        """`postgresql://user:pass@host:port/db` with user and password percent-escaped."""
        return (
            f"postgresql://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
            f"@{self.host}:{self.port}/{quote(self.database, safe='')}"
        )

    def conninfo(self) -> dict[str, str | int]:
        """Keyword arguments for `psycopg.connect(**conninfo)`; no escaping involved."""
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "dbname": self.database,
        }

    def psql_command(self) -> str:
        """A command line a human can paste; the password comes from PGPASSWORD, not argv."""
        return (
            f"PGPASSWORD=<see .staging/up.json> psql -h {self.host} -p {self.port} "
            f"-U {shlex.quote(self.user)} {shlex.quote(self.database)}"
        )


@dataclass(frozen=True)
class TemporalEndpoint:
    host: str
    port: int
    namespace: str
    ui_url: str | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class ServiceSpec:
    """What one run asks of its services."""

    run_id: str
    database: str = "app"
    user: str = "app"
    namespace: str = "default"
    postgres_image: str = "postgres:16-alpine"
    temporal_image: str = "temporalio/temporal:latest"


@runtime_checkable
class Service(Protocol):
    """One running thing. `start` returns quickly; `wait_ready` blocks on a protocol check."""

    name: str

    def start(self) -> None: ...

    def wait_ready(self, timeout: float) -> None:
        """Raise `ServiceUnavailable` (with the log tail as evidence) if not ready in time."""
        ...

    def stop(self) -> None:
        """Idempotent; never raises for an already-stopped service."""
        ...

    def log_tail(self, lines: int = 40) -> str: ...

    def version(self) -> str: ...

    def alive(self) -> bool:
        """Cheap liveness (no protocol call): our process / container still runs."""
        ...


class PostgresService(Service, Protocol):
    def endpoint(self) -> PostgresEndpoint: ...


class TemporalService(Service, Protocol):
    def endpoint(self) -> TemporalEndpoint: ...


class Backend(Protocol):
    name: str  # "docker" | "process"

    def postgres(self, spec: ServiceSpec, password: str) -> PostgresService: ...

    def temporal(self, spec: ServiceSpec) -> TemporalService: ...

    def sweep(self, *, include_detached: bool = False) -> list[str]:
        """Remove leftovers of runs whose owner process is gone; return what was removed.

        Detached runs (`staging up --detach`, `run --keep-on-failure`) are kept unless
        `include_detached`; a live owner's resources are never touched.
        """
        ...

    def stop_run(self, run_id: str) -> list[str]:
        """Stop and remove everything of one run (for `staging down`); return what was removed."""
        ...

    def detach(self, run_id: str) -> None:
        """Let a run's services outlive their owner; only `staging down` stops them."""
        ...
