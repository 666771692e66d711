"""Where a Temporal frontend is and how to reach it: address, namespace, TLS, API key.

`TemporalEndpoint.connect()` is the one `Client.connect` of staging: readiness, the run's
phases, the rollout, history export and the pytest plugin all connect through it, so a
cluster with mTLS or an API key (a shared staging cluster, Temporal Cloud) works
everywhere at once.

TLS material is a path (read when connecting: a rotated certificate is picked up, a
missing one is reported with the path it was looked for at) or the PEM bytes themselves.
An API key implies TLS unless `tls=False` says otherwise, as Temporal Cloud expects. The
API key and any RPC metadata are secrets: never in `repr`, and `secrets()` names them for
the run's `Redactor`.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from staging.errors import ConfigError
from staging.imports import IMPORT_LOCK

if TYPE_CHECKING:
    from temporalio.client import Client
    from temporalio.service import TLSConfig

# A path to a PEM file (str or Path, read when connecting) or the PEM bytes.
Pem = str | Path | bytes

_PEM_MARK = b"-----BEGIN "


class TemporalConnectionConfigError(ConfigError):
    """The TLS material of a Temporal endpoint cannot be used (missing, unreadable, not PEM).

    A configuration problem, not a service that is down: readiness stops polling at once.
    """


@dataclass(frozen=True)
class TemporalTLS:
    """TLS to a Temporal frontend.

    - `client_cert`, `client_key`: the client certificate and its private key, for mTLS
      (both or neither);
    - `server_ca`: the CA that signed the server's certificate (None: the system roots);
    - `server_name`: the name the server's certificate is checked against, also sent as
      SNI (None: the host dialed).

    Each PEM is a path (`str` or `Path`, read when connecting) or the PEM `bytes`.
    """

    client_cert: Pem | None = None
    client_key: Pem | None = field(default=None, repr=False)
    server_ca: Pem | None = None
    server_name: str | None = None

    def __post_init__(self) -> None:
        if (self.client_cert is None) != (self.client_key is None):
            given, missing = (
                ("client_cert", "client_key")
                if self.client_key is None
                else ("client_key", "client_cert")
            )
            raise TemporalConnectionConfigError(
                "Temporal mTLS needs a client certificate and its key together",
                expected="client_cert and client_key both set, or neither",
                observed=f"{given} is set, {missing} is not",
                hint=f"set {missing} as well (or drop {given} for TLS without a client "
                "certificate)",
            )

    def config(self) -> TLSConfig:
        """temporalio's `TLSConfig`, with every file read now."""
        with IMPORT_LOCK:
            from temporalio.service import TLSConfig

        return TLSConfig(
            client_cert=_pem("client_cert", self.client_cert),
            client_private_key=_pem("client_key", self.client_key),
            server_root_ca_cert=_pem("server_ca", self.server_ca),
            domain=self.server_name,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "client_cert": _pem_to_json(self.client_cert),
            "client_key": _pem_to_json(self.client_key),
            "server_ca": _pem_to_json(self.server_ca),
            "server_name": self.server_name,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TemporalTLS:
        return cls(
            client_cert=_pem_from_json(data.get("client_cert")),
            client_key=_pem_from_json(data.get("client_key")),
            server_ca=_pem_from_json(data.get("server_ca")),
            server_name=data.get("server_name"),
        )


@dataclass(frozen=True)
class TemporalEndpoint:
    """A Temporal frontend and how to reach it.

    - `host`, `port`, `namespace`: where; `address` is `host:port`;
    - `ui_url`: the web UI, when there is one (for humans only);
    - `tls`: None (TLS only if `api_key` is set), False (never, even with an API key),
      True (TLS checked against the system roots) or a `TemporalTLS`;
    - `api_key`: sent as `Authorization: Bearer`; never in `repr` or any output;
    - `rpc_metadata`: extra gRPC headers as (name, value) pairs; secret like the key;
    - `namespace_shared`: the namespace holds workflows that are not this run's (an
      attached, shared namespace): workflow scans are then scoped to the run's task
      queues and workflow ids (`staging.temporal.scope.RunScope`), never the namespace.
    """

    host: str
    port: int
    namespace: str
    ui_url: str | None = None
    tls: TemporalTLS | bool | None = None
    api_key: str | None = field(default=None, repr=False)
    rpc_metadata: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    namespace_shared: bool = False

    @classmethod
    def of(cls, target: TemporalEndpoint | str, namespace: str = "default") -> TemporalEndpoint:
        """`target` itself, or a plain endpoint for a `host:port` string in `namespace`."""
        if isinstance(target, TemporalEndpoint):
            return target
        host, sep, port = target.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"expected a Temporal address as host:port, got {target!r}")
        return cls(host, int(port), namespace)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def uses_tls(self) -> bool:
        if self.tls is None:
            return self.api_key is not None
        return self.tls is not False

    @property
    def is_plain(self) -> bool:
        """No TLS, no key, no headers: any plain gRPC client (the `temporal` CLI) reaches it."""
        return not self.uses_tls and self.api_key is None and not self.rpc_metadata

    def secrets(self) -> tuple[str, ...]:
        """Values a `Redactor` must mask: the API key, header values, an inline client key."""
        found = [self.api_key] if self.api_key else []
        found += [value for _, value in self.rpc_metadata if value]
        if isinstance(self.tls, TemporalTLS) and isinstance(self.tls.client_key, bytes):
            found.append(self.tls.client_key.decode("utf-8", "replace"))
        return tuple(found)

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments of `Client.connect` (after the address); TLS files read now."""
        options: dict[str, Any] = {"namespace": self.namespace}
        if isinstance(self.tls, TemporalTLS):
            options["tls"] = self.tls.config()
        elif self.tls is not None:
            options["tls"] = self.tls
        elif self.api_key is not None:
            options["tls"] = True  # explicit: what Temporal Cloud needs with a key
        if self.api_key is not None:
            options["api_key"] = self.api_key
        if self.rpc_metadata:
            options["rpc_metadata"] = dict(self.rpc_metadata)
        return options

    async def connect(self, *, connect_timeout: float | None = None) -> Client:
        """A connected client; raises what temporalio raises (readiness polls on it).

        `TemporalConnectionConfigError` (before any network traffic) when TLS material is
        missing or unreadable.
        """
        with IMPORT_LOCK:
            from temporalio.client import Client

        options = self.client_options()
        if connect_timeout is not None:
            options["connect_timeout"] = timedelta(seconds=connect_timeout)
        return await Client.connect(self.address, **options)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (for the pytest plugin's attach variable); holds the API key."""
        tls = self.tls.to_dict() if isinstance(self.tls, TemporalTLS) else self.tls
        return {
            "host": self.host,
            "port": self.port,
            "namespace": self.namespace,
            "ui_url": self.ui_url,
            "tls": tls,
            "api_key": self.api_key,
            "rpc_metadata": [list(pair) for pair in self.rpc_metadata],
            "namespace_shared": self.namespace_shared,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TemporalEndpoint:
        tls = data.get("tls")
        return cls(
            host=data["host"],
            port=int(data["port"]),
            namespace=data["namespace"],
            ui_url=data.get("ui_url"),
            tls=TemporalTLS.from_dict(tls) if isinstance(tls, dict) else tls,
            api_key=data.get("api_key"),
            rpc_metadata=tuple((str(k), str(v)) for k, v in data.get("rpc_metadata") or ()),
            namespace_shared=bool(data.get("namespace_shared", False)),
        )


def _pem(name: str, source: Pem | None) -> bytes | None:
    if source is None or isinstance(source, bytes):
        data = source
    else:
        path = Path(source).expanduser()
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise _unusable(name, path, "no such file") from None
        except IsADirectoryError:
            raise _unusable(name, path, "a directory, not a file") from None
        except OSError as exc:
            raise _unusable(name, path, f"unreadable ({exc.strerror or exc})") from None
        if _PEM_MARK not in data:
            raise _unusable(name, path, f"{len(data)} bytes without a '-----BEGIN' line")
    if data is not None and _PEM_MARK not in data:
        raise TemporalConnectionConfigError(
            f"Temporal TLS {name} is not PEM",
            expected=f"{name}: PEM text (a '-----BEGIN ...' block)",
            observed=f"{len(data)} bytes without a '-----BEGIN' line",
            hint=f"give {name} the PEM itself or the path of a .pem file",
        )
    return data


def _unusable(name: str, path: Path, observed: str) -> TemporalConnectionConfigError:
    return TemporalConnectionConfigError(
        f"Temporal TLS {name} cannot be read from {path}",
        expected=f"{name}: a readable PEM file at {path}",
        observed=f"{path}: {observed}",
        hint=f"point {name} at the PEM file (a relative path is relative to where staging "
        "runs), or check its permissions",
    )


def _pem_to_json(source: Pem | None) -> dict[str, str] | None:
    if source is None:
        return None
    if isinstance(source, bytes):
        return {"pem": base64.b64encode(source).decode("ascii")}
    return {"path": str(source)}


def _pem_from_json(data: dict[str, str] | None) -> Pem | None:
    if data is None:
        return None
    if "pem" in data:
        return base64.b64decode(data["pem"])
    return Path(data["path"])
