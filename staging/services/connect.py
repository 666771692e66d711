"""One way to connect: every Temporal client and every Postgres connection staging opens.

Losing a service during a run must read as infrastructure (`services.lost`, exit 2), never
as the app's failure; that is decidable only where the connection is made, so every call
site goes through here:

- `TemporalEndpoint.connect()` is the single `Client.connect` (address, namespace, TLS,
  API key); `open_temporal` is it raw (readiness: a refusal there means "not ready
  yet"); `temporal_client` wraps it for a run's phases and turns a refusal into
  `ServiceLost`.
- `open_postgres` is the single `psycopg.connect` (raw, for readiness);
  `postgres_connection` wraps it: a refusal from a port that no longer answers is
  `ServiceLost`, anything else (a wrong password) stays what it is.
- `lost_services` asks the environment whether each service is still alive (the
  service's own `alive()` when it has one, else a TCP probe of its port), so a phase that
  failed can be checked before the app is blamed.

TLS and the API key belong to `TemporalEndpoint` (staging/services/temporal_endpoint.py)
and nowhere else.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from staging.errors import ConfigError, StagingError
from staging.result import Diagnosis, FailureClass
from staging.services.base import PostgresEndpoint, TemporalEndpoint
from staging.services.temporal_endpoint import TemporalConnectionConfigError

if TYPE_CHECKING:
    import psycopg
    from temporalio.client import Client

    from staging.services.environment import Environment

_PROBE_TIMEOUT = 0.5


class ServiceLost(StagingError):
    """A service the run started died or stopped answering while the run used it."""

    failure_class = FailureClass.SERVICES_LOST

    def __init__(self, service: str, address: str, observed: str) -> None:
        self.service = service
        self.address = address
        super().__init__(
            f"{service} at {address} was lost during the run",
            expected=f"{service} answering at {address} until the run ends",
            observed=observed,
            hint=_LOST_HINT,
        )

    def diagnosis_at(self, phase: str, seconds: float) -> Diagnosis:
        return lost_diagnosis([(self.service, self.address, self.observed or "")], phase, seconds)


_LOST_HINT = (
    "this is the environment, not your code: the verdict of this tree is unchanged. Look "
    "for what stopped the service (out of memory, a killed process or container, a full "
    "disk) in its log under logs/, then run again"
)


def lost_diagnosis(
    lost: list[tuple[str, str, str]], phase: str, seconds: float, evidence: tuple[str, ...] = ()
) -> Diagnosis:
    """`services.lost` naming each (service, address, what was seen) and when."""
    names = " and ".join(f"{service} ({address})" for service, address, _ in lost)
    seen = "; ".join(f"{service}: {observed}" for service, _, observed in lost if observed)
    return Diagnosis(
        FailureClass.SERVICES_LOST,
        f"{names} stopped answering during the {phase} phase, {seconds:.1f}s into the run"
        + (f" ({seen})" if seen else ""),
        hint=_LOST_HINT,
        evidence=evidence,
    )


async def open_temporal(
    endpoint: TemporalEndpoint, *, connect_timeout: float | None = None
) -> Client:
    """`endpoint.connect()`; raises what temporalio raises (for readiness polling)."""
    return await endpoint.connect(connect_timeout=connect_timeout)


async def temporal_client(
    endpoint: TemporalEndpoint, *, connect_timeout: float | None = 10.0
) -> Client:
    """A client for a run's Temporal; `ServiceLost` when it does not answer.

    Unusable TLS material (`TemporalConnectionConfigError`) and a refused credential are
    configuration, not a lost service: they are raised as what they are.
    """
    try:
        return await endpoint.connect(connect_timeout=connect_timeout)
    except TemporalConnectionConfigError:
        raise
    except Exception as exc:  # temporalio reports a refused connect as RuntimeError
        status = getattr(getattr(exc, "status", None), "name", "")
        if status in _REFUSED_CREDENTIALS:
            raise ConfigError(
                f"Temporal at {endpoint.address} refused staging's credentials",
                expected=f"access to namespace {endpoint.namespace!r}",
                observed=f"gRPC {status}: {getattr(exc, 'message', exc)}",
                hint="check the API key or client certificate given for this cluster, and "
                "that it is allowed in this namespace",
            ) from exc
        raise ServiceLost("temporal", endpoint.address, f"{type(exc).__name__}: {exc}") from exc


_REFUSED_CREDENTIALS = frozenset({"UNAUTHENTICATED", "PERMISSION_DENIED"})


def open_postgres(
    endpoint: PostgresEndpoint, *, autocommit: bool = False, connect_timeout: int = 10
) -> psycopg.Connection[Any]:
    """The one `psycopg.connect`; raises what psycopg raises (for readiness polling)."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    return psycopg.connect(
        make_conninfo("", **endpoint.conninfo()),
        connect_timeout=connect_timeout,
        autocommit=autocommit,
    )


def postgres_connection(
    endpoint: PostgresEndpoint, *, autocommit: bool = True, connect_timeout: int = 10
) -> psycopg.Connection[Any]:
    """A connection for a run's phases (a context manager); `ServiceLost` when the port is gone."""
    import psycopg

    try:
        return open_postgres(endpoint, autocommit=autocommit, connect_timeout=connect_timeout)
    except psycopg.OperationalError as exc:
        if port_answers(endpoint.host, endpoint.port):
            raise  # it answers and refused us: that is a login or database problem
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        address = f"{endpoint.host}:{endpoint.port}"
        raise ServiceLost("postgres", address, first) from exc


def port_answers(host: str, port: int, timeout: float = _PROBE_TIMEOUT) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def lost_services(env: Environment) -> list[tuple[str, str, str]]:
    """(service, address, what was seen) for each service of `env` that is gone."""
    lost = []
    services = {getattr(s, "name", ""): s for s in getattr(env, "_services", ())}
    pg, tp = getattr(env, "postgres", None), getattr(env, "temporal", None)
    endpoints = [(name, ep) for name, ep in (("postgres", pg), ("temporal", tp)) if ep is not None]
    # Generic services ([[tool.staging.services]]) are lost like the others.
    endpoints += list(getattr(env, "generic", {}).items())
    for name, endpoint in endpoints:
        alive: Callable[[], bool] | None = getattr(services.get(name), "alive", None)
        address = f"{endpoint.host}:{endpoint.port}"
        try:
            if callable(alive):
                ok, seen = bool(alive()), "its process or container is gone"
            else:
                ok = port_answers(endpoint.host, endpoint.port)
                seen = "its port refuses connections"
        except Exception as exc:  # a probe that breaks says nothing either way
            ok, seen = True, f"{type(exc).__name__}: {exc}"
        if not ok:
            lost.append((name, address, seen))
    return lost
