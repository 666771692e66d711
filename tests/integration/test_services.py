"""Both backends, real services: endpoints work, passwords are enforced, runs are isolated,
teardown leaves nothing. The docker param needs an engine (mandatory in CI)."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from staging.services.base import Backend, ServiceSpec
from staging.services.environment import Environment
from staging.services.process_backend import ProcessBackend
from staging.services.state import default_base_dir
from tests.conftest import docker_required

BACKENDS = [
    pytest.param("process", marks=pytest.mark.process),
    pytest.param("docker", marks=pytest.mark.docker),
]


@workflow.defn(name="StagingServicesEcho")
class EchoWorkflow:
    @workflow.run
    async def run(self, text: str) -> str:
        return f"echo: {text}"


@pytest.fixture(scope="module")
def services_dir() -> Iterator[Path]:
    """A state dir shared by this module's runs (one Postgres template), searchable by the
    unprivileged Postgres user, unlike pytest's tmp_path when tests run as root."""
    d = Path(tempfile.mkdtemp(prefix="staging-test-", dir=default_base_dir().parent))
    d.chmod(0o711)
    yield d
    runs = [p.name for p in d.iterdir() if not p.name.startswith(".")]
    shutil.rmtree(d, ignore_errors=True)
    assert runs == [], "a run was not removed on teardown"


def _backend(name: str, services_dir: Path) -> Backend:
    if name == "process":
        return ProcessBackend(services_dir)
    from staging.services.select import choose_backend, docker_module

    if isinstance(docker_module(), str) and not docker_required():
        pytest.skip(f"docker backend not built yet: {docker_module()}")
    return choose_backend("docker")[0]


def _leftovers(name: str, services_dir: Path, run_id: str) -> list[str]:
    """What of `run_id` still exists: run dirs, processes, containers."""
    if name == "process":
        return [str(p) for p in services_dir.iterdir() if run_id in p.name]
    import docker

    client = docker.from_env()
    try:
        found = client.containers.list(all=True, filters={"label": f"staging.run={run_id}"})
        return [c.name for c in found]
    finally:
        client.close()


StartEnv = Callable[..., Environment]


@pytest.fixture(params=BACKENDS)
def start_env(request: pytest.FixtureRequest, services_dir: Path) -> Iterator[StartEnv]:
    started: list[Environment] = []
    name: str = request.param

    def start(**spec_fields: str) -> Environment:
        # The images a user would configure; CI points these at the offline builds.
        images = {
            "postgres_image": os.environ.get("STAGING_POSTGRES_IMAGE", "postgres:16-alpine"),
            "temporal_image": os.environ.get(
                "STAGING_TEMPORAL_IMAGE", "temporalio/temporal:latest"
            ),
        }
        spec = ServiceSpec(run_id=f"t-{uuid.uuid4().hex[:10]}", **{**images, **spec_fields})
        env = Environment.start(spec, _backend(name, services_dir))
        started.append(env)
        return env

    start.backend_name = name  # type: ignore[attr-defined]
    yield start
    for env in started:
        env.stop()


def test_postgres_by_url_and_by_fields(start_env: StartEnv) -> None:
    env = start_env(database="app db", user="app")
    assert env.backend_name == start_env.backend_name  # type: ignore[attr-defined]
    for conninfo in (env.postgres.url, make_conninfo("", **env.postgres.conninfo())):
        with psycopg.connect(conninfo) as conn:
            row = conn.execute("SELECT current_user, current_database(), 40 + 2").fetchone()
        assert row == ("app", "app db", 42)
    for char in "@:/%#'\" ":
        assert char in env.password


@pytest.mark.parametrize("password", ["wrong-password", ""])
def test_wrong_and_empty_passwords_are_rejected(start_env: StartEnv, password: str) -> None:
    env = start_env()
    fields = {**env.postgres.conninfo(), "password": password}
    with pytest.raises(psycopg.OperationalError) as info:
        psycopg.connect(make_conninfo("", **fields)).close()
    message = str(info.value)
    assert "password authentication failed" in message or "no password supplied" in message


def test_temporal_runs_a_workflow_on_a_throwaway_worker(start_env: StartEnv) -> None:
    env = start_env(namespace="staging-test")

    async def scenario() -> str:
        client = await Client.connect(env.temporal.address, namespace=env.temporal.namespace)
        queue = f"q-{uuid.uuid4().hex[:8]}"
        async with Worker(
            client,
            task_queue=queue,
            workflows=[EchoWorkflow],
            workflow_runner=UnsandboxedWorkflowRunner(),
        ):
            return await client.execute_workflow(
                EchoWorkflow.run,
                "hi",
                id=f"wf-{uuid.uuid4().hex[:8]}",
                task_queue=queue,
                execution_timeout=timedelta(seconds=30),
            )

    assert asyncio.run(scenario()) == "echo: hi"


def test_two_environments_do_not_collide(start_env: StartEnv) -> None:
    first, second = start_env(), start_env()
    assert first.postgres.port != second.postgres.port
    assert first.temporal.address != second.temporal.address
    assert first.password != second.password
    with psycopg.connect(first.postgres.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE only_in_first (x int)")
    with psycopg.connect(second.postgres.url) as conn:
        found = conn.execute("SELECT to_regclass('only_in_first')").fetchone()
    assert found == (None,)


def test_teardown_leaves_nothing(start_env: StartEnv, services_dir: Path) -> None:
    env = start_env()
    name: str = start_env.backend_name  # type: ignore[attr-defined]
    assert _leftovers(name, services_dir, env.spec.run_id)
    assert env.alive() == {"postgres": True, "temporal": True}
    seconds = env.stop()
    assert seconds > 0
    assert env.stop() == 0.0  # idempotent
    assert _leftovers(name, services_dir, env.spec.run_id) == []
    assert env.alive() == {"postgres": False, "temporal": False}
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(env.postgres.url, connect_timeout=2).close()


def test_versions_and_logs_never_show_the_password(start_env: StartEnv, tmp_path: Path) -> None:
    env = start_env()
    versions = env.versions()
    assert versions["postgres"].startswith("postgres ")
    assert versions["temporal"].startswith("temporal")
    # A failed login puts the user name into the server log; the password must not follow.
    bad = {**env.postgres.conninfo(), "password": env.password[::-1]}
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(make_conninfo("", **bad)).close()
    env.save_logs(tmp_path / "logs")
    saved = {p.name: p.read_text() for p in (tmp_path / "logs").iterdir()}
    assert set(saved) == {"postgres.log", "temporal.log"}
    assert set(env.log_tails()) == {"postgres", "temporal"}
    for text in [*saved.values(), *env.log_tails().values()]:
        assert env.password not in text
