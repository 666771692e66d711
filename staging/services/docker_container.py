"""One labelled container's life for the docker backend: start, published ports, logs,
and a kill-and-remove stop. Subclasses in `staging.services.docker_backend` say what runs.

testcontainers builds and starts the container; everything it would do by polling and
sleeping (readiness, teardown) is ours.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING, Any, cast

import docker.errors
from docker.models.containers import Container

from staging.errors import ServiceUnavailable
from staging.redact import Redactor
from staging.services.base import LABEL_OWNER, LABEL_RUN, ServiceSpec, owner_id
from staging.services.docker_engine import ensure_image, one_line, remove_container

if TYPE_CHECKING:
    # Types only: importing testcontainers at run time is docker_backend's job, after it
    # has set the environment testcontainers reads at import.
    from testcontainers.core.container import DockerContainer

    from staging.services.docker_backend import DockerBackend

_FINAL_LOG_LINES = 5000


class ContainerService:
    """Start/stop/logs of one labelled container; subclasses say what runs in it."""

    name = "service"
    port = 0

    def __init__(self, backend: DockerBackend, spec: ServiceSpec, image: str) -> None:
        self._backend, self._spec, self._image = backend, spec, image
        # Re-entrant: stop() may come from a signal handler while this thread holds it.
        self._lock = threading.RLock()
        self._container: Container | None = None
        self._stopped = False
        self._host = "127.0.0.1"
        self._ports: dict[int, int] = {}
        self._final_log: str | None = None
        self._redact = Redactor()

    def _definition(self) -> DockerContainer:
        raise NotImplementedError

    def start(self) -> None:
        client = self._backend.client
        ensure_image(client, self._image)
        definition = self._definition()
        labels = {LABEL_RUN: self._spec.run_id, LABEL_OWNER: owner_id()}
        definition.with_kwargs(labels=labels)
        # One engine for everything: the backend's client, not a second one from the env.
        tc_client = definition.get_docker_client()
        tc_client.client.close()
        tc_client.client = client
        bind_ip = "127.0.0.1" if self._backend.loopback() else None
        if self._stopped:  # stopped during the image check: create nothing
            raise self._stopped_while_starting()
        if bind_ip:
            # docker-py accepts (ip, None) = "ephemeral port on ip"; the annotation is narrower.
            ports = cast(dict[str, Any], definition.ports)
            for key in ports:
                ports[key] = (bind_ip, None)
        try:
            definition.start()
        except Exception as exc:
            with contextlib.suppress(Exception):
                remove_container(definition.get_wrapped_container())
            raise ServiceUnavailable(
                f"{self.name}: the {self._image} container did not start",
                expected="docker create + start succeed",
                observed=one_line(exc),
                hint="a port clash or an engine problem shows in the message; "
                "or run without Docker: --backend process",
            ) from exc
        container = definition.get_wrapped_container()
        with self._lock:
            stopped = self._stopped
            if not stopped:
                self._container = container
        if stopped:
            remove_container(container)
            raise self._stopped_while_starting()
        try:
            self._host = bind_ip or definition.get_container_host_ip()
            self._ports = {p: self._host_port(container, p) for p in self._container_ports()}
        except Exception as exc:
            # A container that dies at once has no ports left: its exit is the real story.
            exited = self._exit_reason()
            self.stop()
            if exited is None:
                raise
            raise ServiceUnavailable(
                f"{self.name} did not become ready",
                expected=f"the {self._image} container keeps running",
                observed=exited,
                evidence=[f"{self.name} log tail:\n{self.log_tail()}"],
                hint="read the log tail; the image must honour the official image's contract",
            ) from exc

    def _stopped_while_starting(self) -> ServiceUnavailable:
        return ServiceUnavailable(
            f"{self.name} was stopped while starting",
            hint="another service of this run failed or the run was interrupted: see it",
        )

    def _container_ports(self) -> tuple[int, ...]:
        return (self.port,)

    def _host_port(self, container: Container, port: int) -> int:
        bindings = self._backend.client.api.port(container.id or "", port) or []
        for binding in bindings:
            if binding.get("HostPort"):
                return int(binding["HostPort"])
        raise ServiceUnavailable(
            f"{self.name}: Docker published no host port for container port {port}",
            expected=f"a host port mapped to {port}/tcp",
            observed=repr(bindings),
            hint="check the engine's port publishing (userland proxy, iptables)",
        )

    def _require(self) -> None:
        if not self._ports:
            raise ServiceUnavailable(f"{self.name} is not started", hint="call start() first")

    def _exit_reason(self) -> str | None:
        """Why waiting is pointless: stopped, removed, or exited (then its code)."""
        with self._lock:
            container = self._container
        if container is None:
            return f"{self.name} was stopped"
        try:
            container.reload()
        except docker.errors.NotFound:
            return f"the {self.name} container was removed"
        except docker.errors.DockerException:
            return None  # an engine hiccup is not the container's fault; keep polling
        if container.status in ("exited", "dead"):
            code = container.attrs.get("State", {}).get("ExitCode", "?")
            return f"the {self.name} container ({self._image}) exited with code {code}"
        return None

    def _logs(self, container: Container, lines: int) -> str:
        raw = container.logs(stdout=True, stderr=True, tail=lines)
        return self._redact(raw.decode("utf-8", errors="replace"))

    def full_log(self) -> str:
        with self._lock:
            container = self._container
        if container is not None:
            with contextlib.suppress(docker.errors.DockerException):
                return self._logs(container, _FINAL_LOG_LINES)
        return self._final_log or ""

    def log_tail(self, lines: int = 40) -> str:
        with self._lock:
            container = self._container
        text = self._final_log or ""
        if container is not None:
            with contextlib.suppress(docker.errors.DockerException):
                text = self._logs(container, lines)
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Kill and remove (no graceful shutdown: the data is thrown away anyway)."""
        with self._lock:
            self._stopped = True
            container, self._container = self._container, None
        if container is None:
            return
        with contextlib.suppress(docker.errors.DockerException):
            self._final_log = self._logs(container, _FINAL_LOG_LINES)
        try:
            remove_container(container)
        except docker.errors.DockerException as exc:
            raise ServiceUnavailable(
                f"{self.name}: removing container {container.short_id} failed",
                expected="docker rm -f succeeds",
                observed=one_line(exc),
                hint=f"remove it by hand: docker rm -f -v {container.short_id}",
            ) from exc
