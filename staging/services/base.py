"""The contract between a run and its services.

A backend (registered in `staging.services.backends`) runs the `Service`s the kinds of
`staging.services.kinds` make for it: postgres, temporal, and one per
`[[tool.staging.services]]` entry; `Environment` starts them in parallel, waits for
protocol-level readiness and stops them. Endpoints are plain frozen values: everything a
run needs to render `{postgres.*}` / `{temporal.*}` / `{NAME.host}`.
"""

from __future__ import annotations

import os
import shlex
import socket
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote

from staging.services import images
from staging.services.generic_spec import GenericSpec

# TLS, API key and `connect()` live with the endpoint (issue 14); re-exported here.
from staging.services.temporal_endpoint import TemporalEndpoint as TemporalEndpoint
from staging.services.temporal_endpoint import TemporalTLS as TemporalTLS

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
class ServiceSpec:
    """What one run asks of its services."""

    run_id: str
    database: str = "app"
    user: str = "app"
    namespace: str = "default"
    postgres_image: str = images.POSTGRES
    temporal_image: str = images.TEMPORAL
    services: tuple[GenericSpec, ...] = ()  # [[tool.staging.services]]

    @classmethod
    def from_config(cls, config: Any, run_id: str) -> ServiceSpec:
        """From a `StagingConfig` (duck-typed: the services never import the config model)."""
        return cls(
            run_id=run_id,
            database=config.postgres.database,
            user=config.postgres.user,
            namespace=config.temporal.namespace,
            postgres_image=config.postgres.image,
            temporal_image=config.temporal.image,
            services=tuple(GenericSpec.from_config(s) for s in config.services),
        )

    def images(self) -> tuple[str, ...]:
        """Every image the docker backend would run for this spec."""
        generic = tuple(s.image for s in self.services if s.image)
        return (self.postgres_image, self.temporal_image, *generic)


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
