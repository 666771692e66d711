"""The `docker` backend: Postgres and a Temporal dev server in throwaway containers.

Thin over testcontainers, which creates and starts the containers (image, env, labels,
published ports). What testcontainers would do by polling logs and sleeping is ours: the
image check with an actionable error (`staging.services.docker_engine`), readiness by a real
protocol conversation (`staging.services.readiness`), a kill-and-remove teardown
(`staging.services.docker_container`), and the sweep of containers whose owner process died.
Its Ryuk reaper is never used: its image cannot be pulled in air-gapped CI, and cleanup that
depends on it would hide our own bugs.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from typing import cast

# testcontainers reads both at import time: no Ryuk, and published ports on loopback.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
os.environ.setdefault("TC_HOST", "127.0.0.1")

import docker
import docker.errors
from testcontainers.community.postgres import PostgresContainer
from testcontainers.core.config import testcontainers_config
from testcontainers.core.container import DockerContainer

from staging.redact import Redactor
from staging.services.base import (
    LABEL_OWNER,
    LABEL_RUN,
    PostgresEndpoint,
    PostgresService,
    ServiceSpec,
    TemporalEndpoint,
    TemporalService,
)
from staging.services.docker_container import ContainerService
from staging.services.docker_engine import (
    ENGINE_HINT,
    OFFLINE_IMAGES_HINT,
    STATUS_TIMEOUT,
    connect_engine,
    describe,
    docker_engine_status,
    docker_host,
    ensure_image,
    labelled,
    pid_alive,
    remove_container,
)
from staging.services.readiness import wait_postgres, wait_temporal
from staging.services.state import (
    candidate_base_dirs,
    clear_detached,
    detached_runs,
    mark_detached,
)

# Callers and `staging.services.select` know these by this module's name.
__all__ = [
    "ENGINE_HINT",
    "OFFLINE_IMAGES_HINT",
    "PGDATA",
    "PG_PORT",
    "STATUS_TIMEOUT",
    "TEMPORAL_PORT",
    "TEMPORAL_UI_PORT",
    "DockerBackend",
    "DockerPostgres",
    "DockerTemporal",
    "connect_engine",
    "docker_engine_status",
    "ensure_image",
    "testcontainers_config",
]

# Set explicitly too: testcontainers may have been imported before this module.
testcontainers_config.ryuk_disabled = True

PG_PORT = 5432
TEMPORAL_PORT = 7233
TEMPORAL_UI_PORT = 8233
PGDATA = "/var/lib/postgresql/data"


class _StagingPostgresContainer(PostgresContainer):
    def _connect(self) -> None:
        """No in-container psql loop: readiness is an authenticated SELECT 1 over TCP."""


class DockerPostgres(ContainerService):
    name = "postgres"
    port = PG_PORT

    def __init__(self, backend: DockerBackend, spec: ServiceSpec, password: str) -> None:
        super().__init__(backend, spec, spec.postgres_image)
        self._password = password
        self._redact = Redactor([password])
        self._server_version: int | None = None

    def _definition(self) -> DockerContainer:
        # The password travels as a container env var (the API's JSON, no shell); it is
        # never put into a URL by testcontainers' helpers, which do not escape it fully.
        container = _StagingPostgresContainer(self._image, port=PG_PORT, driver=None)
        # Set after construction: the constructor turns "" into "test" and falls back to
        # POSTGRES_* variables of our own environment.
        container.username = self._spec.user
        container.password = self._password
        container.dbname = self._spec.database
        # A tmpfs data dir: initdb on overlayfs costs seconds; this database is thrown away.
        container.with_tmpfs_mount(PGDATA)
        return cast(DockerContainer, container)

    def endpoint(self) -> PostgresEndpoint:
        self._require()
        spec = self._spec
        return PostgresEndpoint(
            self._host, self._ports[PG_PORT], spec.user, self._password, spec.database
        )

    def wait_ready(self, timeout: float) -> None:
        wait_postgres(self.endpoint(), timeout, self.log_tail, abort=self._exit_reason)
        self._confirm_identity()

    def version(self) -> str:
        if self._server_version is None and self._ports:
            import psycopg
            from psycopg.conninfo import make_conninfo

            with (
                contextlib.suppress(psycopg.Error),
                psycopg.connect(
                    make_conninfo("", **self.endpoint().conninfo()), connect_timeout=2
                ) as conn,
            ):
                self._server_version = conn.info.server_version
        if self._server_version is None:
            return f"postgres ({self._image})"
        major, minor = divmod(self._server_version, 10000)
        return f"postgres {major}.{minor} ({self._image})"


class DockerTemporal(ContainerService):
    name = "temporal"
    port = TEMPORAL_PORT

    def __init__(self, backend: DockerBackend, spec: ServiceSpec) -> None:
        super().__init__(backend, spec, spec.temporal_image)
        self._version: str | None = None

    def _container_ports(self) -> tuple[int, ...]:
        return (TEMPORAL_PORT, TEMPORAL_UI_PORT)

    def _definition(self) -> DockerContainer:
        command = ["server", "start-dev", "--ip", "0.0.0.0", "--namespace", self._spec.namespace]
        # The web UI would fetch a newsfeed from the internet; staging talks to loopback only.
        command += ["--ui-disable-news-fetch", "--log-level", "warn"]
        container = DockerContainer(self._image)
        container.with_command(command)
        container.with_exposed_ports(TEMPORAL_PORT, TEMPORAL_UI_PORT)
        return container

    def endpoint(self) -> TemporalEndpoint:
        self._require()
        ui = f"http://{self._host}:{self._ports[TEMPORAL_UI_PORT]}"
        return TemporalEndpoint(
            self._host, self._ports[TEMPORAL_PORT], self._spec.namespace, ui_url=ui
        )

    def wait_ready(self, timeout: float) -> None:
        wait_temporal(self.endpoint(), timeout, self.log_tail, abort=self._exit_reason)
        self._confirm_identity()

    def version(self) -> str:
        if self._version is None:
            with self._lock:
                container = self._container
            if container is None:
                return f"temporal ({self._image})"
            try:
                result = container.exec_run(["temporal", "--version"])
            except docker.errors.DockerException:
                return f"temporal ({self._image})"
            # "temporal version 1.9.1 (Server 1.32.0, UI 2.54.1)"
            words = cast(bytes, result.output).decode(errors="replace").split()
            if result.exit_code != 0 or len(words) < 3:
                return f"temporal ({self._image})"
            self._version = f"temporal CLI {' '.join(words[2:])} ({self._image})"
        return self._version


class DockerBackend:
    """`Backend`: each service in its own container, labelled with run and owner."""

    name = "docker"

    def __init__(self, client: docker.DockerClient | None = None) -> None:
        self._client = client
        self._client_lock = threading.Lock()
        self._loopback: bool | None = None

    @property
    def client(self) -> docker.DockerClient:
        with self._client_lock:
            if self._client is None:
                self._client = connect_engine()
            return self._client

    def loopback(self) -> bool:
        """Do the engine's published ports listen on our own loopback?

        Then containers publish on 127.0.0.1 only and clients connect there: nothing of a run
        faces the network, and no traffic goes to a bridge address. testcontainers guesses
        "inside a container" from /.dockerenv alone, which VM images built from containers
        carry too; the engine's host name settles it.
        """
        if self._loopback is None:
            self._loopback = self._engine_is_local()
        return self._loopback

    def _engine_is_local(self) -> bool:
        override = testcontainers_config.connection_mode_override is not None
        if override or not docker_host().startswith("unix://"):
            return False
        if not os.path.exists("/.dockerenv"):
            return True
        try:
            return bool(self.client.info().get("Name") == socket.gethostname())
        except docker.errors.DockerException:
            return False

    def postgres(self, spec: ServiceSpec, password: str) -> PostgresService:
        return DockerPostgres(self, spec, password)

    def temporal(self, spec: ServiceSpec) -> TemporalService:
        return DockerTemporal(self, spec)

    def sweep(self, *, include_detached: bool = False) -> list[str]:
        """Remove containers of this host whose owner process is gone; never a live owner's.

        Detached runs (`staging up --detach`) are kept unless `include_detached`.
        """
        host = socket.gethostname()
        detached: set[str] = set()
        for base in candidate_base_dirs():
            detached |= detached_runs(base)
        removed: list[str] = []
        for container in labelled(self.client, LABEL_OWNER):
            owner_host, _, pid = container.labels.get(LABEL_OWNER, "").rpartition(":")
            run_id = container.labels.get(LABEL_RUN, "")
            if owner_host != host or not pid.isdigit() or pid_alive(int(pid)):
                continue
            if run_id in detached and not include_detached:
                continue
            if remove_container(container):
                removed.append(describe(container))
                if run_id in detached:
                    with contextlib.suppress(OSError, ValueError):
                        clear_detached(run_id)
        return removed

    def stop_run(self, run_id: str) -> list[str]:
        """Remove every container of `run_id`, whoever owns it (`staging down`)."""
        run_label = f"{LABEL_RUN}={run_id}"
        removed = [describe(c) for c in labelled(self.client, run_label) if remove_container(c)]
        with contextlib.suppress(OSError, ValueError):
            clear_detached(run_id)
        return removed

    def detach(self, run_id: str) -> None:
        """Labels are fixed at creation, so the mark lives where the process backend's does."""
        mark_detached(run_id)
