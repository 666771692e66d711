"""`[tool.staging.attach]` + the environment it names -> how to reach the existing cluster.

Secrets never come from the file: the section names environment variables, and a named
variable that is unset or empty is a config error naming the variable, never a value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from staging.errors import ConfigError
from staging.imports import import_module
from staging.services.temporal_endpoint import TemporalEndpoint, TemporalTLS

import_module("psycopg")  # under the import lock: other threads may be importing it too
from psycopg.conninfo import conninfo_to_dict  # noqa: E402

if TYPE_CHECKING:
    from staging.config.model import AttachConfig

SECTION = "[tool.staging.attach]"


@dataclass(frozen=True)
class AdminUrl:
    """The Postgres admin connection (from the variable `env`), and where apps connect."""

    url: str = field(repr=False)
    env: str
    host: str
    port: int
    user: str

    def conninfo(self) -> str:
        return self.url

    def secrets(self) -> tuple[str, ...]:
        """What a `Redactor` must mask in what the server says: the URL and its password."""
        password = str(conninfo_to_dict(self.url).get("password") or "")
        return (self.url, password) if password else (self.url,)


@dataclass(frozen=True)
class AttachTarget:
    """The cluster of one attached run: Temporal (with TLS / API key) and Postgres."""

    temporal: TemporalEndpoint  # namespace "" when a namespace is created per run
    namespace_prefix: str
    admin: AdminUrl
    lease: float  # seconds after its start when another host presumes a run dead

    @property
    def shared_namespace(self) -> str:
        return self.temporal.namespace


def _var(environ: Mapping[str, str], key: str, name: str, what: str) -> str:
    value = environ.get(name, "")
    if not value.strip():
        state = "is empty" if name in environ else "is not set"
        raise ConfigError(
            f"{SECTION} {key} names the environment variable {name}, which {state}",
            expected=f"{name} set to {what}",
            observed=f"{name} {state}",
            hint=f"export {name} (from your CI's secret store) before `staging run`, or "
            f"change {key} to the variable that holds it",
        )
    return value.strip()


def _address(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(
            f"{SECTION} temporal_address is not host:port",
            expected="host:port of the Temporal frontend, e.g. temporal.staging.internal:7233",
            observed=repr(value),
            hint='set temporal_address = "HOST:PORT" (Temporal Cloud: '
            "<namespace>.<account>.tmprl.cloud:7233)",
        )
    return host.strip("[]"), int(port)


def admin_url(environ: Mapping[str, str], name: str) -> AdminUrl:
    url = _var(environ, "postgres_admin_url_env", name, "postgresql://ADMIN:PASSWORD@HOST:PORT/DB")

    try:
        parts: dict[str, Any] = conninfo_to_dict(url)
    except Exception as exc:
        # psycopg's message may quote the string, password included: only the type is shown.
        raise ConfigError(
            f"the Postgres admin URL in {name} does not parse",
            expected="postgresql://ADMIN:PASSWORD@HOST:PORT/DB (password percent-escaped)",
            observed=f"{type(exc).__name__} (the value is not shown: it holds a password)",
            hint=f"check {name}; escape @ : / % # in the password as %40 %3A %2F %25 %23",
        ) from None
    host = str(parts.get("host") or "localhost")
    if host.startswith("/") or "," in host:
        raise ConfigError(
            f"the Postgres admin URL in {name} names no single TCP host",
            expected="one host the app can reach over TCP",
            observed=f"host={host}",
            hint=f"give {name} a URL with one host:port",
        )
    port = str(parts.get("port") or "5432")
    user = str(parts.get("user") or "")
    return AdminUrl(url, name, host, int(port) if port.isdigit() else 5432, user)


def _optional(environ: Mapping[str, str], key: str, name: str, what: str) -> str | None:
    return _var(environ, key, name, what) if name else None


def _tls(cfg: AttachConfig, environ: Mapping[str, str]) -> TemporalTLS | bool | None:
    cert = _optional(environ, "tls_cert_env", cfg.tls_cert_env, "a PEM file path")
    key = _optional(environ, "tls_key_env", cfg.tls_key_env, "a PEM file path")
    ca = _optional(environ, "tls_ca_env", cfg.tls_ca_env, "a PEM file path")
    if cert or ca or cfg.tls_server_name:
        return TemporalTLS(cert, key, ca, cfg.tls_server_name or None)
    return cfg.tls


def resolve(cfg: AttachConfig, timeout: float, environ: Mapping[str, str]) -> AttachTarget:
    """`cfg`: the validated `AttachConfig`; `timeout`: the run's (for the lease)."""
    missing = cfg.missing()
    if missing:
        raise ConfigError(
            f'backend = "attach" needs {SECTION} {", ".join(missing)}',
            expected=f"{SECTION} with temporal_address, namespace or namespace_prefix, "
            "postgres_admin_url_env",
            observed="missing: " + ", ".join(missing),
            hint='add them to [tool.staging.attach], or use backend = "auto"',
        )
    host, port = _address(cfg.temporal_address)
    api_key = _optional(environ, "api_key_env", cfg.api_key_env, "an API key")
    temporal = TemporalEndpoint(host, port, cfg.namespace, tls=_tls(cfg, environ), api_key=api_key)
    admin = admin_url(environ, cfg.postgres_admin_url_env)
    return AttachTarget(temporal, cfg.namespace_prefix, admin, timeout + cfg.lease_margin)
