"""What a generic service (`[[tool.staging.services]]`) asks for, and where it answers.

Plain frozen values, independent of the config model (the services never import it) and
of any backend: `ServiceSpec.services` carries them, the docker and process backends read
them, and `{NAME.host}` / `{NAME.port}` are rendered from a `GenericEndpoint`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

HOST_TOKEN = "{host}"
PORT_TOKEN = "{port}"
# Names a generic service cannot take: the built-in kinds and the other placeholder roots.
RESERVED_NAMES = ("postgres", "temporal", "capture", "worker", "task_queue")
PLACEHOLDER_KEYS = ("host", "port")


@dataclass(frozen=True)
class ReadyCheck:
    """Exactly one of: a TCP connection held open, an HTTP GET answered < 500, a command
    exiting 0 (`{port}` / `{host}` substituted)."""

    tcp: bool = False
    http: str | None = None  # the path, e.g. "/healthz"
    command: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.http is not None:
            return f"HTTP GET {self.http} answers with a status below 500"
        if self.command:
            return f"`{' '.join(self.command)}` exits 0"
        return "a TCP connection is accepted and held open"


@dataclass(frozen=True)
class GenericSpec:
    """One `[[tool.staging.services]]` entry."""

    name: str
    image: str = ""  # docker backend
    command: tuple[str, ...] = ()  # process backend; program looked up on PATH
    ports: tuple[int, ...] = ()  # container ports; the first is {NAME.port}
    env: tuple[tuple[str, str], ...] = ()
    ready: ReadyCheck = field(default_factory=lambda: ReadyCheck(tcp=True))
    ready_timeout: float = 30.0

    @classmethod
    def from_config(cls, entry: Any) -> GenericSpec:
        """From a `staging.config.model.ServiceConfig` (duck-typed: no import of the model)."""
        ready = entry.ready
        return cls(
            name=entry.name,
            image=entry.image,
            command=tuple(entry.command),
            ports=tuple(entry.ports),
            env=tuple(sorted(entry.env.items())),
            ready=ReadyCheck(
                tcp=bool(ready.tcp), http=ready.http, command=tuple(ready.command or ())
            ),
            ready_timeout=float(entry.ready_timeout),
        )

    @property
    def port(self) -> int:
        """The main container port (`{NAME.port}` maps to it)."""
        return self.ports[0]


def substitute(value: str, host: str, port: int) -> str:
    """`{host}` and `{port}` in a command argument or an env value; nothing else changes."""
    return value.replace(HOST_TOKEN, host).replace(PORT_TOKEN, str(port))


@dataclass(frozen=True)
class GenericEndpoint:
    name: str
    host: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"
