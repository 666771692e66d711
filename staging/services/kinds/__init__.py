"""Service kinds: what a run can ask for, one module each (postgres, temporal, generic).

API::

    from staging.services.kinds import ServiceKind, register_kind, get_kind

    KIND = ServiceKind(
        name="redis",                                  # also the root of its placeholders
        description="...",
        placeholder_keys=("host", "port"),             # {redis.host}, {redis.port}
        values=lambda endpoint: {"host": endpoint.host, "port": str(endpoint.port)},
        factories={"process": make_process, "docker": make_docker},  # backend name -> factory
        default_image="redis:7",
    )
    register_kind(KIND)

- A factory is `(backend, spec: ServiceSpec, request: ServiceRequest) -> Service`; it
  imports its backend's module when called (a config names kinds long before a backend
  runs, and docker's module pulls in testcontainers).
- A backend with no factory in `factories` is asked through `via_backend` (postgres and
  temporal: the `Backend` protocol's `postgres()` / `temporal()`, which `attach`
  implements); a kind without one is a `ConfigError` naming the backend.
- `get_kind(name)`, `kinds()`; `ServiceKind.create(backend, spec, request)`;
  `ServiceKind.placeholders(service_name, endpoint)` -> {"postgres.host": ..., ...}.

Adding a kind is one module here (a `KIND`, built from `kinds.kind.ServiceKind`) plus
its name in the registration loop at the end of this module.
"""

from __future__ import annotations

from staging.errors import ConfigError
from staging.services.kinds import generic, postgres, temporal
from staging.services.kinds.kind import ServiceFactory, ServiceKind, ServiceRequest

__all__ = [
    "ServiceFactory",
    "ServiceKind",
    "ServiceRequest",
    "get_kind",
    "kinds",
    "register_kind",
]

_REGISTRY: dict[str, ServiceKind] = {}


def register_kind(kind: ServiceKind) -> ServiceKind:
    _REGISTRY[kind.name] = kind
    return kind


def get_kind(name: str) -> ServiceKind:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown service kind {name!r}",
            expected=" | ".join(_REGISTRY),
            observed=name,
            hint="a service kind is registered by its module in staging.services.kinds",
        ) from None


def kinds() -> tuple[ServiceKind, ...]:
    return tuple(_REGISTRY.values())


for _module in (postgres, temporal, generic):
    register_kind(_module.KIND)
