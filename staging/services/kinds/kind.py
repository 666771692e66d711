"""The type of a service kind and of one request for a service (see the package docstring).

A leaf of the package: the kind modules import it, never the package's registry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from staging.errors import ConfigError

if TYPE_CHECKING:
    from staging.services.base import Service, ServiceSpec
    from staging.services.generic_spec import GenericSpec


@dataclass(frozen=True)
class ServiceRequest:
    """One service a run asks for: its kind, its name, and what only that kind needs."""

    kind: str
    name: str
    password: str = field(default="", repr=False)  # postgres: the run's generated password
    generic: GenericSpec | None = None  # generic: its [[tool.staging.services]] entry


ServiceFactory = Callable[[Any, "ServiceSpec", ServiceRequest], "Service"]


@dataclass(frozen=True)
class ServiceKind:
    name: str
    description: str
    placeholder_keys: tuple[str, ...]
    # endpoint -> {placeholder key: value}; the keys are `placeholder_keys`
    values: Callable[[Any], Mapping[str, str]] = field(repr=False)
    factories: Mapping[str, ServiceFactory] = field(default_factory=dict, repr=False)
    default_image: str | None = None
    via_backend: ServiceFactory | None = field(default=None, repr=False)

    def create(self, backend: Any, spec: ServiceSpec, request: ServiceRequest) -> Service:
        factory = self.factories.get(backend.name, self.via_backend)
        if factory is None:
            raise ConfigError(
                f"the {backend.name} backend cannot start {self.name} services ({request.name!r})",
                expected=f"a backend that provides {self.name} services: "
                + " | ".join(sorted(self.factories)),
                observed=f'backend = "{backend.name}"',
                hint=f"remove the service {request.name!r} from [tool.staging] or choose "
                f"--backend {' or '.join(sorted(self.factories)) or 'auto'}",
            )
        return factory(backend, spec, request)

    def supports(self, backend: str) -> bool:
        """Can `backend` (a registered name) start services of this kind?"""
        return backend in self.factories or self.via_backend is not None

    def placeholders(self, service_name: str, endpoint: Any) -> dict[str, str]:
        """`{<service_name>.<key>}` -> value, for every key of this kind."""
        return {f"{service_name}.{k}": v for k, v in self.values(endpoint).items()}
