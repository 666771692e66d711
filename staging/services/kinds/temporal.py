"""Temporal, the run's frontend and namespace: `{temporal.address}` ... `{temporal.namespace}`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from staging.services import images
from staging.services.kinds.kind import ServiceKind, ServiceRequest

if TYPE_CHECKING:
    from staging.services.base import Service, ServiceSpec, TemporalEndpoint

DEFAULT_IMAGE = images.TEMPORAL
KEYS = ("address", "host", "port", "namespace")


def _values(endpoint: TemporalEndpoint) -> dict[str, str]:
    return {
        "address": endpoint.address,
        "host": endpoint.host,
        "port": str(endpoint.port),
        "namespace": endpoint.namespace,
    }


# Each factory imports its backend's module when called: see the package docstring.
def _process(backend: Any, spec: ServiceSpec, request: ServiceRequest) -> Service:
    from staging.services.process_temporal import ProcessTemporal

    return ProcessTemporal(backend, spec)


def _docker(backend: Any, spec: ServiceSpec, request: ServiceRequest) -> Service:
    from staging.services.docker_backend import DockerTemporal

    return DockerTemporal(backend, spec)


def _via_backend(backend: Any, spec: ServiceSpec, request: ServiceRequest) -> Service:
    service: Service = backend.temporal(spec)
    return service


KIND = ServiceKind(
    name="temporal",
    description="the run's Temporal frontend and namespace",
    placeholder_keys=KEYS,
    values=_values,
    factories={"process": _process, "docker": _docker},
    default_image=DEFAULT_IMAGE,
    via_backend=_via_backend,
)
