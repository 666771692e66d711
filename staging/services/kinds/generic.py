"""Generic services, `[[tool.staging.services]]` (Redis, a mail catcher...): `{NAME.host}`,
`{NAME.port}`.

One entry runs its `image` on the docker backend (container ports from `ports`) and its
`command` on the process backend (the program found on PATH, `{port}` = the port staging
allocated). Other backends (`attach`) have none: a config error names the service.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from staging.errors import ConfigError
from staging.services.generic_spec import PLACEHOLDER_KEYS, GenericEndpoint, GenericSpec
from staging.services.kinds.kind import ServiceKind, ServiceRequest

if TYPE_CHECKING:
    from staging.services.base import Service, ServiceSpec


def _values(endpoint: GenericEndpoint) -> dict[str, str]:
    return {"host": endpoint.host, "port": str(endpoint.port)}


def _entry(request: ServiceRequest) -> GenericSpec:
    if request.generic is None:  # pragma: no cover - Environment always passes it
        raise ValueError(f"generic service {request.name!r} without its spec")
    return request.generic


def missing_for(backend: str, entry: GenericSpec) -> str | None:
    """What `entry` lacks to run on `backend` (None when nothing): image / command."""
    if backend == "docker" and not entry.image:
        return "image"
    if backend == "process" and not entry.command:
        return "command"
    return None


def _lacking(backend: str, entry: GenericSpec, key: str) -> ConfigError:
    return ConfigError(
        f"[[tool.staging.services]] {entry.name!r} cannot run on the {backend} backend: "
        f"it has no {key}",
        expected=f"{key} = ... for the {backend} backend",
        observed=f"{entry.name}: image={entry.image!r}, command={list(entry.command)!r}",
        hint=f"add {key} to the service, or choose the other backend with --backend",
    )


# Each factory imports its backend's module when called: see the package docstring.
def _process(backend: Any, spec: ServiceSpec, request: ServiceRequest) -> Service:
    from staging.services.generic_process import ProcessGeneric

    entry = _entry(request)
    if missing_for("process", entry):
        raise _lacking("process", entry, "command")
    return ProcessGeneric(backend, spec, entry)


def _docker(backend: Any, spec: ServiceSpec, request: ServiceRequest) -> Service:
    from staging.services.generic_docker import DockerGeneric

    entry = _entry(request)
    if missing_for("docker", entry):
        raise _lacking("docker", entry, "image")
    return DockerGeneric(backend, spec, entry)


KIND = ServiceKind(
    name="generic",
    description="a [[tool.staging.services]] entry: an image (docker) and/or a command (process)",
    placeholder_keys=PLACEHOLDER_KEYS,
    values=_values,
    factories={"process": _process, "docker": _docker},
)
