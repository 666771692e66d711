"""A generic service (`[[tool.staging.services]]`) in a container: its `image`.

The container carries the run's labels (`staging.run`, `staging.owner`) like Postgres' and
Temporal's, so a sweep or `staging down` removes it. Its `ports` are published on
ephemeral host ports (loopback when the engine is local); `{NAME.port}` is the first one.
In the container, `{port}` is the container port and `{host}` 0.0.0.0 (what a server must
bind for a published port to reach it); a `ready.command` runs inside the container.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, cast

import docker.errors

from staging.services.base import ServiceSpec
from staging.services.docker_container import ContainerHost, ContainerService
from staging.services.generic_ready import probe_for, wait_generic
from staging.services.generic_spec import GenericEndpoint, GenericSpec, substitute

if TYPE_CHECKING:
    from testcontainers.core.container import DockerContainer

_BIND_ALL = "0.0.0.0"


class DockerGeneric(ContainerService):
    """`Service` for one generic entry on the docker backend."""

    def __init__(self, backend: ContainerHost, spec: ServiceSpec, entry: GenericSpec) -> None:
        self.name = entry.name
        self.port = entry.port
        super().__init__(backend, spec, entry.image)
        self._entry = entry
        self.ready_timeout = entry.ready_timeout  # its own, not the run's default

    def _container_ports(self) -> tuple[int, ...]:
        return self._entry.ports

    def _definition(self) -> DockerContainer:
        # Here, not at the top: testcontainers reads its settings at import, which the
        # docker backend (imported before any of its services exist) sets first.
        from testcontainers.core.container import DockerContainer

        container = DockerContainer(self._image)
        container.with_exposed_ports(*self._entry.ports)
        for key, value in self._entry.env:
            container.with_env(key, substitute(value, _BIND_ALL, self._entry.port))
        return container

    def endpoint(self) -> GenericEndpoint:
        self._require()
        return GenericEndpoint(self.name, self._host, self._ports[self._entry.port])

    def _exec(self, argv: list[str], timeout: float) -> tuple[int, str]:
        with self._lock:
            container = self._container
        if container is None:
            return -1, f"the {self.name} container is gone"
        try:
            result = container.exec_run(argv)
        except docker.errors.DockerException as exc:
            return -1, f"{type(exc).__name__}: {exc}"
        output = cast(bytes, result.output or b"").decode("utf-8", "replace")
        return int(result.exit_code if result.exit_code is not None else -1), output

    def wait_ready(self, timeout: float) -> None:
        endpoint = self.endpoint()
        probe = probe_for(
            self._entry,
            endpoint.host,
            endpoint.port,
            self._exec,
            command_host="127.0.0.1",
            command_port=self._entry.port,
            deadline=time.monotonic() + timeout,
        )
        wait_generic(
            self._entry, endpoint.address, probe, timeout, self.log_tail, abort=self._exit_reason
        )
        self._confirm_identity()

    def version(self) -> str:
        return f"{self.name} ({self._image})"
