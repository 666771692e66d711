"""One labelled container's life for the docker backend: start, published ports, logs,
and a kill-and-remove stop. Subclasses (`staging.services.docker_backend`,
`staging.services.generic_docker`) say what runs.

testcontainers builds and starts the container; everything it would do by polling and
sleeping (readiness, teardown) is ours.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING, Any, Protocol, cast

import docker
import docker.errors
from docker.models.containers import Container

from staging.errors import ServiceUnavailable
from staging.redact import Redactor
from staging.services.base import LABEL_OWNER, LABEL_RUN, ServiceSpec, owner_id
from staging.services.docker_engine import ensure_image, one_line, remove_container
from staging.services.ports import FORCE_ENV, Holder, describe_holder, forced_port, holder

if TYPE_CHECKING:
    # Types only: importing testcontainers at run time is docker_backend's job, after it
    # has set the environment testcontainers reads at import.
    from testcontainers.core.container import DockerContainer

_FINAL_LOG_LINES = 5000
_CLASH_MARKERS = ("port is already allocated", "address already in use")


class ContainerHost(Protocol):
    """What a container asks of the docker backend (`DockerBackend` is the one): this
    module never imports it, the backend imports this one."""

    @property
    def client(self) -> docker.DockerClient: ...

    def loopback(self) -> bool: ...


class ContainerService:
    """Start/stop/logs of one labelled container; subclasses say what runs in it."""

    name = "service"
    port = 0

    def __init__(self, backend: ContainerHost, spec: ServiceSpec, image: str) -> None:
        self._backend, self._spec, self._image = backend, spec, image
        # Re-entrant: stop() may come from a signal handler while this thread holds it.
        self._lock = threading.RLock()
        self._container: Container | None = None
        self._stopped = False
        self._host = "127.0.0.1"
        self._ports: dict[int, int] = {}
        self._final_log: str | None = None
        self._redact = Redactor()
        self._forced: int | None = None

    def _definition(self) -> DockerContainer:
        raise NotImplementedError

    def start(self) -> None:
        forced = forced_port(self.name)
        if forced is not None and holder(forced, []) is Holder.FOREIGN:
            # Before any engine work: the engine would refuse it only after creating.
            self._forced = forced
            raise self._start_failed(OSError(f"{describe_holder(forced)}: address already in use"))
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
        self._publish(definition, bind_ip)
        try:
            definition.start()
        except Exception as exc:
            with contextlib.suppress(Exception):
                remove_container(definition.get_wrapped_container())
            raise self._start_failed(exc) from exc
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

    def _publish(self, definition: DockerContainer, bind_ip: str | None) -> None:
        """Ephemeral host ports, chosen and bound by the engine itself: no race to lose.

        `STAGING_TEST_<NAME>_PORT` (a test hook) forces the main port's host side instead.
        """
        self._forced = forced_port(self.name)
        # docker-py accepts (ip, None) = "ephemeral port on ip"; the annotation is narrower.
        published = cast(dict[str, Any], definition.ports)
        for key in published:
            host_port = self._forced if key == str(self.port) else None
            if bind_ip:
                published[key] = (bind_ip, host_port)
            elif host_port is not None:
                published[key] = host_port

    def _start_failed(self, exc: Exception) -> ServiceUnavailable:
        observed, full = one_line(exc), str(exc).lower()
        if self._forced is not None and any(m in full for m in _CLASH_MARKERS):
            return ServiceUnavailable(
                f"{self.name}: port clash on host port {self._forced}",
                expected=f"the {self._image} container published on port {self._forced}",
                observed=one_line(exc, 1000),
                hint=f"free port {self._forced} or unset {FORCE_ENV.format(self.name.upper())}",
            )
        return ServiceUnavailable(
            f"{self.name}: the {self._image} container did not start",
            expected="docker create + start succeed",
            observed=observed,
            hint="a port clash or an engine problem shows in the message; "
            "or run without Docker: --backend process",
        )

    def _confirm_identity(self) -> None:
        """A ready answer counts only while our container runs and owns the mapped port."""
        reason = self._exit_reason()
        with self._lock:
            container = self._container
        mapped: dict[int, int] = {}
        if reason is None and container is not None:
            with contextlib.suppress(ServiceUnavailable, docker.errors.DockerException):
                mapped = {p: self._host_port(container, p) for p in self._ports}
        if reason is None and mapped == self._ports:
            return
        raise ServiceUnavailable(
            f"{self.name}: the server that answered is not the container staging started",
            expected=f"the {self._image} container running with host ports {self._ports}",
            observed=reason or f"host ports now {mapped}",
            evidence=[f"{self.name} log tail:\n{self.log_tail()}"],
            hint="something replaced or stopped the container during start-up; run again",
        )

    def alive(self) -> bool:
        """Cheap liveness: the container still exists and runs (one engine call)."""
        with self._lock:
            container = self._container
        if container is None:
            return False
        try:
            container.reload()
        except docker.errors.DockerException:
            return False
        return container.status == "running"

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
