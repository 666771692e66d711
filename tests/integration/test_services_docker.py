"""The docker backend against a real engine, with the offline images of compose/images
(STAGING_POSTGRES_IMAGE / STAGING_TEMPORAL_IMAGE name others). Mandatory in CI."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import docker
import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from staging.errors import ServiceUnavailable
from staging.services.base import (
    LABEL_OWNER,
    LABEL_RUN,
    PostgresService,
    Service,
    ServiceSpec,
    TemporalService,
    owner_id,
)
from staging.services.password import generate_password
from tests.conftest import docker_required

pytestmark = pytest.mark.docker

POSTGRES_IMAGE = os.environ.get("STAGING_POSTGRES_IMAGE", "staging/postgres:15")
TEMPORAL_IMAGE = os.environ.get("STAGING_TEMPORAL_IMAGE", "staging/temporal:1.9.1")
MISSING_IMAGE = "staging/does-not-exist:0"


@pytest.fixture(scope="module")
def client() -> Iterator[docker.DockerClient]:
    c = docker.from_env()
    missing = []
    for image in (POSTGRES_IMAGE, TEMPORAL_IMAGE):
        try:
            c.images.get(image)
        except docker.errors.ImageNotFound:
            missing.append(image)
    if missing and not docker_required():
        c.close()
        pytest.skip(f"images {missing} are missing: bash compose/images/build.sh")
    yield c
    c.close()


def _spec(**fields: str) -> ServiceSpec:
    return ServiceSpec(
        run_id=f"t-docker-{uuid.uuid4().hex[:10]}",
        postgres_image=POSTGRES_IMAGE,
        temporal_image=TEMPORAL_IMAGE,
        **fields,
    )


def _containers(client: docker.DockerClient, run_id: str) -> list[str]:
    found = client.containers.list(all=True, filters={"label": f"{LABEL_RUN}={run_id}"})
    return [str(c.name) for c in found]


def _up(*services: Service, timeout: float = 60) -> None:
    """Start and wait for each service in its own thread, as `Environment` does."""
    errors: list[BaseException] = []

    def up(service: Service) -> None:
        try:
            service.start()
            service.wait_ready(timeout)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=up, args=(s,)) for s in services]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


@dataclass
class Running:
    spec: ServiceSpec
    password: str
    postgres: PostgresService
    temporal: TemporalService


@pytest.fixture(scope="module")
def running(client: docker.DockerClient) -> Iterator[Running]:
    from staging.services.docker_backend import DockerBackend

    backend = DockerBackend(client)
    spec = _spec(database="app db", user="app", namespace="staging-docker")
    password = generate_password()
    pg, temporal = backend.postgres(spec, password), backend.temporal(spec)
    try:
        _up(pg, temporal)
        yield Running(spec, password, pg, temporal)
    finally:
        pg.stop()
        temporal.stop()


def test_psycopg_connects_by_url_and_by_fields(running: Running) -> None:
    endpoint = running.postgres.endpoint()
    assert endpoint.password == running.password
    for conninfo in (endpoint.url, make_conninfo("", **endpoint.conninfo())):
        with psycopg.connect(conninfo, connect_timeout=5) as conn:
            row = conn.execute("SELECT current_user, current_database(), 40 + 2").fetchone()
        assert row == ("app", "app db", 42)


@pytest.mark.parametrize("password", ["wrong-password", ""])
def test_wrong_and_empty_passwords_are_rejected(running: Running, password: str) -> None:
    fields = {**running.postgres.endpoint().conninfo(), "password": password}
    with pytest.raises(psycopg.OperationalError) as info:
        psycopg.connect(make_conninfo("", **fields), connect_timeout=5).close()
    message = str(info.value)
    assert "password authentication failed" in message or "no password supplied" in message


def test_temporal_client_connects_and_the_namespace_exists(running: Running) -> None:
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
    from temporalio.client import Client

    endpoint = running.temporal.endpoint()

    async def describe() -> str:
        client = await Client.connect(endpoint.address, namespace=endpoint.namespace)
        request = DescribeNamespaceRequest(namespace=endpoint.namespace)
        response = await client.workflow_service.describe_namespace(request)
        return response.namespace_info.name

    assert asyncio.run(describe()) == "staging-docker"
    assert endpoint.ui_url is not None and endpoint.ui_url.startswith("http://")


def test_containers_carry_run_and_owner_labels(
    running: Running, client: docker.DockerClient
) -> None:
    found = client.containers.list(filters={"label": f"{LABEL_RUN}={running.spec.run_id}"})
    assert sorted(str(c.image.tags[0]) for c in found if c.image) == sorted(
        [POSTGRES_IMAGE, TEMPORAL_IMAGE]
    )
    for container in found:
        assert container.labels[LABEL_OWNER] == owner_id()


def test_ports_are_published_on_loopback(running: Running, client: docker.DockerClient) -> None:
    from staging.services.docker_backend import DockerBackend

    if not DockerBackend(client).loopback():
        pytest.skip("the engine is not local: ports are published where testcontainers says")
    for container in client.containers.list(
        filters={"label": f"{LABEL_RUN}={running.spec.run_id}"}
    ):
        for bindings in container.ports.values():
            assert {b["HostIp"] for b in bindings or []} <= {"127.0.0.1"}
    assert running.postgres.endpoint().host == "127.0.0.1"


def test_versions_and_logs(running: Running) -> None:
    assert running.postgres.version().startswith("postgres ")
    assert running.temporal.version().startswith("temporal ")
    assert running.password not in running.postgres.log_tail(200)


def test_stop_removes_the_container_and_is_idempotent(client: docker.DockerClient) -> None:
    from staging.services.docker_backend import DockerBackend

    spec = _spec()
    service = DockerBackend(client).temporal(spec)
    try:
        _up(service)
        assert len(_containers(client, spec.run_id)) == 1
        assert service.alive()
        before = service.log_tail(1)
    finally:
        service.stop()
    assert _containers(client, spec.run_id) == []
    assert not service.alive()
    service.stop()
    assert before and before in service.log_tail(1000)  # kept from before the removal


def test_a_container_that_exits_is_reported_with_its_log(client: docker.DockerClient) -> None:
    """An empty password makes Postgres images refuse to start: readiness stops at once."""
    from staging.services.docker_backend import DockerBackend

    spec = _spec()
    service = DockerBackend(client).postgres(spec, "")
    try:
        # It may die before start() has read its ports, or while wait_ready() polls.
        with pytest.raises(ServiceUnavailable) as info:
            service.start()
            service.wait_ready(60)
    finally:
        service.stop()
    assert "exited with code" in (info.value.observed or "")
    assert "POSTGRES_PASSWORD" in "\n".join(info.value.evidence)
    assert _containers(client, spec.run_id) == []


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_sweep_removes_a_dead_owners_container_and_keeps_a_live_ones(
    client: docker.DockerClient,
) -> None:
    from staging.services.docker_backend import DockerBackend

    run_dead, run_live = f"t-dead-{uuid.uuid4().hex[:8]}", f"t-live-{uuid.uuid4().hex[:8]}"
    dead_owner = f"{socket.gethostname()}:{_dead_pid()}"
    created = []
    try:
        for run_id, owner in ((run_dead, dead_owner), (run_live, owner_id())):
            labels = {LABEL_RUN: run_id, LABEL_OWNER: owner}
            created.append(client.containers.create(TEMPORAL_IMAGE, labels=labels))
        removed = DockerBackend(client).sweep()
        assert _containers(client, run_dead) == []
        assert len(_containers(client, run_live)) == 1
        assert any(run_dead in line for line in removed)
        assert not any(run_live in line for line in removed)
    finally:
        for container in created:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True, v=True)


def test_a_missing_image_names_the_image_and_both_ways_out(client: docker.DockerClient) -> None:
    from staging.services.docker_backend import DockerBackend

    spec = ServiceSpec(run_id=f"t-missing-{uuid.uuid4().hex[:8]}", temporal_image=MISSING_IMAGE)
    service = DockerBackend(client).temporal(spec)
    with pytest.raises(ServiceUnavailable) as info:
        service.start()
    service.stop()
    text = str(info.value)
    assert MISSING_IMAGE in text
    assert "pull failed" in text
    assert "compose/images/build.sh" in text
    assert "--backend process" in text
    assert _containers(client, spec.run_id) == []


@pytest.mark.parametrize("seen", ["before_start", "by_the_engine"])
def test_a_taken_host_port_is_a_clash_at_once(
    client: docker.DockerClient, monkeypatch: pytest.MonkeyPatch, seen: str
) -> None:
    """The engine picks and binds host ports itself (no race); the test hook forces one,
    refused before any engine work, or by the engine when taken after that check."""
    from staging.services import docker_container
    from staging.services.docker_backend import DockerBackend
    from staging.services.ports import Holder

    if seen == "by_the_engine":
        monkeypatch.setattr(docker_container, "holder", lambda *_: Holder.NONE)

    spec = _spec()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("STAGING_TEST_TEMPORAL_PORT", str(port))
        service = DockerBackend(client).temporal(spec)
        try:
            with pytest.raises(ServiceUnavailable) as info:
                service.start()
        finally:
            service.stop()
    assert info.value.message == f"temporal: port clash on host port {port}"
    assert "STAGING_TEST_TEMPORAL_PORT" in info.value.hint
    assert _containers(client, spec.run_id) == []
