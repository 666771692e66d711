"""Postgres, the run's database: `{postgres.host}` ... `{postgres.url}`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from staging.services import images
from staging.services.kinds.kind import ServiceKind, ServiceRequest

if TYPE_CHECKING:
    from staging.services.base import PostgresEndpoint, Service, ServiceSpec

DEFAULT_IMAGE = images.POSTGRES
KEYS = ("host", "port", "user", "password", "database", "url")


def _values(endpoint: PostgresEndpoint) -> dict[str, str]:
    return {
        "host": endpoint.host,
        "port": str(endpoint.port),
        "user": endpoint.user,
        "password": endpoint.password,
        "database": endpoint.database,
        "url": endpoint.url,
    }


# Each factory imports its backend's module when called: see the package docstring.
def _process(backend: Any, spec: ServiceSpec, request: ServiceRequest) -> Service:
    from staging.services.process_postgres import ProcessPostgres

    return ProcessPostgres(backend, spec, request.password)


def _docker(backend: Any, spec: ServiceSpec, request: ServiceRequest) -> Service:
    from staging.services.docker_backend import DockerPostgres

    return DockerPostgres(backend, spec, request.password)


def _via_backend(backend: Any, spec: ServiceSpec, request: ServiceRequest) -> Service:
    service: Service = backend.postgres(spec, request.password)
    return service


KIND = ServiceKind(
    name="postgres",
    description="the run's Postgres database",
    placeholder_keys=KEYS,
    values=_values,
    factories={"process": _process, "docker": _docker},
    default_image=DEFAULT_IMAGE,
    via_backend=_via_backend,
)
