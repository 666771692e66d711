"""One run's services: chosen, swept, started in parallel, ready, and stopped exactly once.

`Environment.start` is a factory in the `temporalio.testing` style: if anything fails half
way it stops whatever it started and re-raises, so a caller never holds a half-started
environment. `stop()` is safe from any thread (and from a signal handler), any number of
times, and fast: services are killed, not gracefully shut down.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from staging.redact import Redactor
from staging.services.base import (
    Backend,
    PostgresEndpoint,
    PostgresService,
    Service,
    ServiceSpec,
    TemporalEndpoint,
    TemporalService,
)
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


class Environment:
    # Set once both services are ready; `start()` never returns an environment without them.
    postgres: PostgresEndpoint
    temporal: TemporalEndpoint

    def __init__(
        self,
        spec: ServiceSpec,
        backend: Backend,
        backend_reason: str,
        postgres: PostgresService,
        temporal: TemporalService,
        password: str,
    ) -> None:
        self.spec = spec
        self.backend = backend
        self.backend_name = backend.name
        self.backend_reason = backend_reason
        self._services: tuple[Service, ...] = (postgres, temporal)
        self._pg_service, self._temporal_service = postgres, temporal
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
    ) -> Environment:
        """Sweep leftovers, choose the backend, start both services in parallel, wait ready.

        `ui` asks for Temporal's web UI where it costs extra (the process backend).
        """
        emit = on_event or _quiet
        if isinstance(backend, str):
            chosen, reason = choose_backend(
                backend, ui=ui, images=(spec.postgres_image, spec.temporal_image)
            )
        else:
            chosen, reason = backend, f"the {backend.name} backend was given"
        emit(f"services backend: {chosen.name} ({reason})")
        sweep_leftovers(chosen, emit)
        password = generate_password()
        env = cls(
            spec, chosen, reason, chosen.postgres(spec, password), chosen.temporal(spec), password
        )
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
                service.wait_ready(timeout)
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
        self.postgres = self._pg_service.endpoint()
        self.temporal = self._temporal_service.endpoint()
        emit(f"services ready in {time.monotonic() - begin:.2f}s")

    @property
    def password(self) -> str:
        return self.postgres.password

    @property
    def services(self) -> tuple[Service, ...]:
        return self._services

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
