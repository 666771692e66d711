"""One run's services: chosen, swept, started in parallel, ready, and stopped exactly once.

`Environment.start` is a factory in the `temporalio.testing` style: if anything fails half
way it stops whatever it started and re-raises, so a caller never holds a half-started
environment. `stop()` is safe from any thread (and from a signal handler), any number of
times, and fast: services are killed, not gracefully shut down.

The services are a mapping name -> (kind, service): `postgres`, `temporal`, and one per
`[[tool.staging.services]]` entry (kind `generic`), each made by its kind
(`staging.services.kinds`) for the chosen backend. Once ready, `endpoints` maps each name to
its endpoint; `postgres` / `temporal` stay attributes (much code reads them), `generic` holds
the generic ones, and `placeholders()` renders every `{NAME.key}` the services provide.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from staging.errors import ConfigError
from staging.redact import Redactor
from staging.services.backends import describe_choices
from staging.services.base import (
    Backend,
    PostgresEndpoint,
    Service,
    ServiceSpec,
    TemporalEndpoint,
)
from staging.services.generic_spec import GenericEndpoint
from staging.services.kinds import ServiceKind, ServiceRequest, get_kind
from staging.services.password import generate_password
from staging.services.process_backend import ProcessBackend
from staging.services.select import choose_backend
from staging.services.state import mark_detached

EventSink = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def sweep_leftovers(backend: Backend, emit: EventSink = _quiet) -> list[str]:
    """Sweep the chosen backend and the process backend (it needs no engine to sweep)."""
    sweepers: list[Backend] = [backend]
    if backend.name != "process":
        sweepers.append(ProcessBackend())
    removed: list[str] = []
    for sweeper in sweepers:
        try:
            found = sweeper.sweep()
        except Exception as exc:  # others' leftovers must never stop this run
            emit(f"sweep of the {sweeper.name} backend failed: {type(exc).__name__}: {exc}")
            continue
        for line in found:
            emit(f"removed leftovers: {line}")
        removed += found
    return removed


def service_requests(spec: ServiceSpec, password: str) -> list[ServiceRequest]:
    """Every service `spec` asks for: postgres, temporal, then the generic ones in order."""
    requests = [
        ServiceRequest("postgres", "postgres", password=password),
        ServiceRequest("temporal", "temporal"),
    ]
    requests += [ServiceRequest("generic", g.name, generic=g) for g in spec.services]
    return requests


def check_backend_kinds(spec: ServiceSpec, backend: str) -> None:
    """A generic service on a backend that has none (`attach`): a config error, before any
    backend is chosen or started."""
    if backend == "auto" or not spec.services:
        return
    kind = get_kind("generic")
    if not kind.supports(backend):
        names = ", ".join(repr(s.name) for s in spec.services)
        raise ConfigError(
            f"backend = {backend!r} cannot start the [[tool.staging.services]] {names}",
            expected=f"a backend that runs generic services: {' | '.join(kind.factories)}",
            observed=f"backend = {backend!r} (choices: {describe_choices()})",
            hint="remove those services, or run with --backend docker / process",
        )


class Environment:
    # Set once every service is ready; `start()` never returns an environment without them.
    postgres: PostgresEndpoint
    temporal: TemporalEndpoint

    def __init__(
        self,
        spec: ServiceSpec,
        backend: Backend,
        backend_reason: str,
        services: Mapping[str, tuple[ServiceKind, Service]],
        password: str,
    ) -> None:
        self.spec = spec
        self.backend = backend
        self.backend_name = backend.name
        self.backend_reason = backend_reason
        self._kinds = {name: kind for name, (kind, _) in services.items()}
        self._by_name = {name: service for name, (_, service) in services.items()}
        self._services: tuple[Service, ...] = tuple(self._by_name.values())
        self.endpoints: dict[str, Any] = {}
        self.generic: dict[str, GenericEndpoint] = {}
        self._redact = Redactor([password])
        self._lock = threading.RLock()  # re-entrant: stop() may run from a signal handler
        self._stopping = False
        self._detached = False

    @classmethod
    def start(
        cls,
        spec: ServiceSpec,
        backend: str | Backend = "auto",
        *,
        on_event: EventSink | None = None,
        ready_timeout: float = 60,
        ui: bool = False,
        config: object = None,
    ) -> Environment:
        """Sweep leftovers, choose the backend, start every service in parallel, wait ready.

        `ui` asks for Temporal's web UI where it costs extra (the process backend);
        `config` (the `StagingConfig`) reaches the factories of registered backends.
        """
        emit = on_event or _quiet
        if isinstance(backend, str):
            check_backend_kinds(spec, backend)
            chosen, reason = choose_backend(
                backend,
                ui=ui,
                images=spec.images(),
                config=config,
                docker_possible=all(s.image for s in spec.services),
            )
        else:
            chosen, reason = backend, f"the {backend.name} backend was given"
        check_backend_kinds(spec, chosen.name)
        password = generate_password()
        services = {}
        for request in service_requests(spec, password):  # creates objects, starts nothing
            kind = get_kind(request.kind)
            services[request.name] = (kind, kind.create(chosen, spec, request))
        emit(f"services backend: {chosen.name} ({reason})")
        sweep_leftovers(chosen, emit)
        env = cls(spec, chosen, reason, services, password)
        try:
            env._bring_up(ready_timeout, emit)
        except BaseException:
            env.stop()
            raise
        return env

    def _bring_up(self, timeout: float, emit: EventSink) -> None:
        """Start and wait for every service in its own thread; the first failure stops all."""
        errors: list[BaseException] = []
        begin = time.monotonic()

        def up(service: Service) -> None:
            try:
                service.start()
                # A generic service has its own ready_timeout ([[tool.staging.services]]).
                service.wait_ready(getattr(service, "ready_timeout", None) or timeout)
            except BaseException as exc:
                errors.append(exc)
                with contextlib.suppress(Exception):
                    self._stop_services()  # unblocks the other service's wait at once
            else:
                emit(f"{service.name} ready in {time.monotonic() - begin:.2f}s")

        threads = [
            threading.Thread(target=up, args=(s,), name=f"staging-{s.name}", daemon=True)
            for s in self._services
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        for name, service in self._by_name.items():
            endpoint = getattr(service, "endpoint", None)
            if callable(endpoint):
                self.endpoints[name] = endpoint()
        self.postgres = self.endpoints["postgres"]
        self.temporal = self.endpoints["temporal"]
        self.generic = {
            name: ep for name, ep in self.endpoints.items() if self._kinds[name].name == "generic"
        }
        emit(f"services ready in {time.monotonic() - begin:.2f}s")

    @property
    def password(self) -> str:
        return self.postgres.password

    @property
    def services(self) -> tuple[Service, ...]:
        return self._services

    def service(self, name: str) -> Service:
        return self._by_name[name]

    def kinds(self) -> dict[str, str]:
        """Each service's kind, by name: {"postgres": "postgres", "redis": "generic"}."""
        return {name: kind.name for name, kind in self._kinds.items()}

    def placeholders(self) -> dict[str, str]:
        """Every `{NAME.key}` the services provide -> its value (secrets included)."""
        values: dict[str, str] = {}
        for name, endpoint in self.endpoints.items():
            values.update(self._kinds[name].placeholders(name, endpoint))
        return values

    def alive(self) -> dict[str, bool]:
        """Each service's cheap liveness (process alive / container running), by name."""
        return {s.name: s.alive() for s in self._services}

    def versions(self) -> dict[str, str]:
        return {s.name: s.version() for s in self._services}

    def log_tails(self, lines: int = 40) -> dict[str, str]:
        return {s.name: self._redact(s.log_tail(lines)) for s in self._services}

    def save_logs(self, dest_dir: Path) -> None:
        """Write each service's full log (redacted) to `dest_dir/<service>.log`."""
        dest_dir.mkdir(parents=True, exist_ok=True)
        for service in self._services:
            full_log = getattr(service, "full_log", None)
            text = full_log() if callable(full_log) else service.log_tail(1_000_000)
            (dest_dir / f"{service.name}.log").write_text(self._redact(str(text)))

    def detach(self) -> None:
        """Leave the services running after this process exits (`staging up --detach`).

        Sweeps skip detached runs; only `staging down` (or `down --all`) stops them.
        """
        with self._lock:
            detach = getattr(self.backend, "detach", None)
            if callable(detach):
                detach(self.spec.run_id)
            else:
                mark_detached(self.spec.run_id)
            self._detached = True

    def _stop_services(self) -> None:
        failures = []

        def stop_one(service: Service) -> None:
            try:
                service.stop()
            except Exception as exc:  # keep stopping the rest
                failures.append(f"{service.name}: {type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=stop_one, args=(s,)) for s in self._services]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if failures:
            raise RuntimeError("stopping services failed: " + "; ".join(failures))

    def stop(self) -> float:
        """Stop and remove every service; seconds taken (0 when already stopped or detached)."""
        with self._lock:
            if self._stopping or self._detached:
                return 0.0
            self._stopping = True
            begin = time.monotonic()
            self._stop_services()
            return time.monotonic() - begin

    def __enter__(self) -> Environment:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
