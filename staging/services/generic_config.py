"""`[[tool.staging.services]]`: the config shape of generic services, and its checks.

```toml
[[tool.staging.services]]
name = "redis"
image = "staging/redis:7"        # docker backend (container port from `ports`)
command = ["redis-server", "--port", "{port}", "--save", "", "--appendonly", "no"]
ports = [6379]                   # container ports; the first is {redis.port}
env = {}                         # the service's own environment ({port}, {host} work)
ready = { tcp = true }           # or { http = "/healthz" } or { command = [...] }
ready_timeout = 30
```

Part of `staging.config.model.StagingConfig` (its `services` key); here because it is the
services' vocabulary. Errors name the entry and read as expected-vs-observed with a fix
(`ctx.expected` is what `staging.config.problems` puts in the message).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from staging.services.generic_spec import PLACEHOLDER_KEYS, RESERVED_NAMES
from staging.services.kinds import get_kind

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
# {root.key} placeholders in [tool.staging.env] / process_env (literal {{ }} skipped).
_PLACEHOLDER = re.compile(r"(?<!\{)\{\s*([A-Za-z0-9_-]+)\.([^{}\s]+)\s*\}")


def _error(message: str, expected: str) -> PydanticCustomError:
    return PydanticCustomError("value_error", message, {"expected": expected})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ReadyConfig(_Strict):
    tcp: bool = False
    http: str | None = None  # a path: "/healthz"
    command: list[str] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ReadyConfig:
        given = [k for k, v in (("tcp", self.tcp), ("http", self.http), ("command", self.command))
                 if v]  # fmt: skip
        if len(given) != 1:
            raise _error(
                f"ready needs exactly one check, got {' and '.join(given) or 'none'}",
                'one of { tcp = true }, { http = "/healthz" } or '
                '{ command = ["redis-cli", "-p", "{port}", "ping"] }',
            )
        if self.http is not None and not self.http.startswith("/"):
            raise _error(f"ready.http must be a path, got {self.http!r}", 'a path like "/healthz"')
        return self


class ServiceConfig(_Strict):
    name: str
    image: str = ""
    command: list[str] = Field(default_factory=list)
    ports: list[int] = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    ready: ReadyConfig = Field(default_factory=lambda: ReadyConfig(tcp=True))
    ready_timeout: float = Field(default=30, gt=0)

    @field_validator("name")
    @classmethod
    def _usable_name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise _error(
                f"service name {value!r} cannot be a placeholder root ({{{value}.host}})",
                "a name of letters, digits, '_' or '-', starting with a letter, like \"redis\"",
            )
        if value in RESERVED_NAMES:
            raise _error(
                f"service name {value!r} is taken by staging's own placeholders",
                f"a name other than {', '.join(RESERVED_NAMES)}",
            )
        return value

    @field_validator("ports")
    @classmethod
    def _port_numbers(cls, value: list[int]) -> list[int]:
        bad = [p for p in value if not 0 < p < 65536]
        if bad:
            raise _error(f"not port numbers: {bad}", "container ports between 1 and 65535")
        return value

    @model_validator(mode="after")
    def _runnable(self) -> ServiceConfig:
        if not self.image and not self.command:
            raise _error(
                f"service {self.name!r} has neither an image nor a command",
                'an image = "..." (docker backend) and/or a command = ["program", ...] '
                "(process backend)",
            )
        if self.command and not self.command[0]:
            raise _error(f"service {self.name!r}: command[0] is empty", "a program name")
        if self.command and not any("{port}" in v for v in [*self.command, *self.env.values()]):
            # Else it listens on its own default port, and readiness waits on staging's.
            raise _error(
                f"service {self.name!r}: the command never receives the port staging "
                "allocates for it",
                '{port} in the command (like "--port", "{port}") or in its env',
            )
        return self


def check_services(
    services: list[ServiceConfig], backend: str, tables: Mapping[str, Mapping[str, str]]
) -> None:
    """Across entries: unique names, a backend that can run them, placeholders that name
    them (`{redsi.host}` fails here, at load, not after the services started)."""
    names = [s.name for s in services]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise _error(
            f"[[tool.staging.services]] names must be unique; repeated: {', '.join(dupes)}",
            "one entry per service name",
        )
    _check_backend(services, backend)
    _check_placeholders(set(names), tables)


def _check_backend(services: list[ServiceConfig], backend: str) -> None:
    if not services or backend == "auto":
        return
    if not get_kind("generic").supports(backend):
        raise _error(
            f'backend = "{backend}" cannot start [[tool.staging.services]] '
            f"({', '.join(repr(s.name) for s in services)}): it provides no generic services",
            'backend = "auto", "docker" or "process" (or remove the services)',
        )
    need = {"docker": "image", "process": "command"}.get(backend)
    lacking = [s.name for s in services if need and not getattr(s, need)]
    if lacking:
        raise _error(
            f'backend = "{backend}" needs a {need} for every service; '
            f"{', '.join(repr(n) for n in lacking)} has none",
            f"{need} = ... in each [[tool.staging.services]] entry, or another backend",
        )


def placeholder_roots(tables: Mapping[str, Mapping[str, str]]) -> list[tuple[str, str, str, str]]:
    """(table, variable, root, key) of every `{root.key}` in the tables."""
    found = []
    for table, templates in tables.items():
        for var, template in templates.items():
            for match in _PLACEHOLDER.finditer(template):
                found.append((table, var, match.group(1), match.group(2)))
    return found


def _check_placeholders(names: set[str], tables: Mapping[str, Any]) -> None:
    builtin = set(RESERVED_NAMES)
    for table, var, root, key in placeholder_roots(tables):
        if root in builtin:
            continue  # checked with their own names by staging.config.render
        if root not in names:
            known = ", ".join(sorted(names)) or "none"
            raise _error(
                f"tool.staging.{table}.{var}: {{{root}.{key}}} names no service "
                f"(services: {known})",
                f"a [[tool.staging.services]] entry named {root!r}, or a known placeholder "
                "like {postgres.host}",
            )
        if key not in PLACEHOLDER_KEYS:
            raise _error(
                f"tool.staging.{table}.{var}: unknown placeholder {{{root}.{key}}}",
                " or ".join(f"{{{root}.{k}}}" for k in PLACEHOLDER_KEYS),
            )
