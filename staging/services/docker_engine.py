"""The Docker engine as the docker backend sees it: is one there, is the image there, and
the label-keyed removal that teardown and the sweep of dead owners share.

Only the docker SDK here; testcontainers, and its import-time setup, stay with the modules
that build containers.
"""

from __future__ import annotations

import os

import docker
import docker.errors
from docker.models.containers import Container
from docker.utils import parse_repository_tag

from staging.errors import ServiceUnavailable
from staging.services.base import LABEL_OWNER, LABEL_RUN

STATUS_TIMEOUT = 2  # seconds

OFFLINE_IMAGES_HINT = (
    "build offline equivalents with `bash compose/images/build.sh`, then set "
    "STAGING_POSTGRES_IMAGE=staging/postgres:15 and STAGING_TEMPORAL_IMAGE=staging/temporal:1.9.1; "
    "or run without Docker: --backend process"
)
ENGINE_HINT = (
    "start the Docker engine (`dockerd &` or `systemctl start docker`), "
    "or run without Docker: --backend process"
)


def one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def docker_host() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def docker_engine_status() -> tuple[bool, str]:
    """(engine answers?, "Docker 28.2.2" or why not); gives up after ~2 s."""
    try:
        client = docker.from_env(timeout=STATUS_TIMEOUT)
        try:
            version = client.version().get("Version", "?")
        finally:
            client.close()
    except Exception as exc:  # any failure means "no usable engine"; say which
        return False, f"no Docker engine answers at {docker_host()} ({one_line(exc, 200)})"
    return True, f"Docker {version}"


def connect_engine() -> docker.DockerClient:
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        raise ServiceUnavailable(
            "no Docker engine answers",
            expected=f"a Docker engine at {docker_host()}",
            observed=one_line(exc),
            hint=ENGINE_HINT,
        ) from exc
    return client


def ensure_image(client: docker.DockerClient, image: str) -> None:
    """Use the local image, else pull it; if neither works, say exactly how to get one."""
    try:
        client.images.get(image)
        return
    except docker.errors.ImageNotFound:
        pass
    except docker.errors.DockerException as exc:
        raise ServiceUnavailable(
            f"cannot look up the Docker image {image!r}",
            expected="a Docker engine that answers",
            observed=one_line(exc),
            hint=ENGINE_HINT,
        ) from exc
    repository, tag = parse_repository_tag(image)
    try:
        client.images.pull(repository, tag=tag or "latest")
    except docker.errors.DockerException as exc:
        raise ServiceUnavailable(
            f"the Docker image {image!r} is not present locally and could not be pulled",
            expected=f"{image} in the local image store, or pullable from its registry",
            observed=f"pull failed: {one_line(exc)}",
            hint=OFFLINE_IMAGES_HINT,
        ) from exc


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def labelled(client: docker.DockerClient, label: str) -> list[Container]:
    """Every container carrying `label` ("key" or "key=value"), stopped ones included."""
    return client.containers.list(all=True, filters={"label": label}, ignore_removed=True)


def describe(container: Container) -> str:
    labels = container.labels
    return (
        f"docker container {container.short_id} ({container.name}) of run "
        f"{labels.get(LABEL_RUN, '?')}, owner {labels.get(LABEL_OWNER, '?')}"
    )


def remove_container(container: Container) -> bool:
    """Kill and remove with its volumes; False if it was already gone."""
    try:
        container.remove(force=True, v=True)
    except docker.errors.NotFound:
        return False
    except docker.errors.APIError as exc:
        if exc.status_code == 409 and "in progress" in str(exc):  # someone else removes it
            return False
        raise
    return True
