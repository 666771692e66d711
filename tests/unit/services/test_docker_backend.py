"""The docker backend's decisions, against a fake Docker client: image checks, the sweep,
teardown bookkeeping. No engine involved (the real engine is in tests/integration)."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path
from typing import Any, cast

import docker.errors
import pytest

from staging.errors import ServiceUnavailable
from staging.result import FailureClass
from staging.services import docker_backend
from staging.services.base import LABEL_OWNER, LABEL_RUN, ServiceSpec, owner_id
from staging.services.docker_backend import DockerBackend, docker_engine_status, ensure_image
from staging.services.state import detached_runs, mark_detached

PASSWORD = "p@ss:w/rd%#'\" x"
NO_ENGINE = "unix:///nonexistent/staging-test-docker.sock"


class FakeImages:
    def __init__(self, present: set[str], pull_error: Exception | None = None) -> None:
        self.present = present
        self.pull_error = pull_error
        self.pulled: list[tuple[str, str | None]] = []

    def get(self, name: str) -> object:
        if name in self.present:
            return object()
        raise docker.errors.ImageNotFound(f"No such image: {name}")

    def pull(self, repository: str, tag: str | None = None) -> object:
        self.pulled.append((repository, tag))
        if self.pull_error is not None:
            raise self.pull_error
        self.present.add(f"{repository}:{tag}")
        return object()


class FakeContainer:
    def __init__(self, cid: str, labels: dict[str, str], logs: bytes = b"") -> None:
        self.id = cid
        self.short_id = cid[:12]
        self.name = f"name-{cid}"
        self.labels = labels
        self.removed = False
        self.vanished = False  # removed behind our back (its owner, another sweep)
        self._logs = logs

    def remove(self, force: bool = False, v: bool = False) -> None:
        assert force and v, "containers are killed and removed with their volumes"
        if self.removed or self.vanished:
            raise docker.errors.NotFound(f"No such container: {self.id}")
        self.removed = True

    def logs(self, **_: Any) -> bytes:
        return self._logs


class FakeContainers:
    def __init__(self, containers: list[FakeContainer]) -> None:
        self.containers = containers

    def list(
        self, all: bool = False, filters: dict[str, str] | None = None, **_: Any
    ) -> list[FakeContainer]:
        assert all, "stopped containers are leftovers too"
        key, _, value = (filters or {}).get("label", "").partition("=")
        return [
            c
            for c in self.containers
            if not c.removed and key in c.labels and (not value or c.labels[key] == value)
        ]


class FakeClient:
    def __init__(
        self,
        present: set[str] | None = None,
        pull_error: Exception | None = None,
        containers: list[FakeContainer] | None = None,
    ) -> None:
        self.images = FakeImages(present or set(), pull_error)
        self.containers = FakeContainers(containers or [])


def _backend(client: FakeClient) -> DockerBackend:
    return DockerBackend(client=cast(Any, client))


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _labels(run_id: str, owner: str) -> dict[str, str]:
    return {LABEL_RUN: run_id, LABEL_OWNER: owner}


@pytest.fixture(autouse=True)
def _state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Detached-run marks go to a private state dir, never the machine's real one."""
    state = tmp_path / "state"
    monkeypatch.setenv("STAGING_STATE_DIR", str(state))
    return state


# --- images -------------------------------------------------------------------------------


def test_a_present_image_is_used_without_pulling() -> None:
    client = FakeClient(present={"staging/postgres:15"})
    ensure_image(cast(Any, client), "staging/postgres:15")
    assert client.images.pulled == []


@pytest.mark.parametrize(
    ("image", "pulled"),
    [
        ("postgres", ("postgres", "latest")),
        ("postgres:16-alpine", ("postgres", "16-alpine")),
        ("registry.local:5000/team/pg:15", ("registry.local:5000/team/pg", "15")),
    ],
)
def test_a_missing_image_is_pulled_by_repository_and_tag(
    image: str, pulled: tuple[str, str]
) -> None:
    client = FakeClient()
    ensure_image(cast(Any, client), image)
    assert client.images.pulled == [pulled]


def test_an_unpullable_image_names_the_image_the_pull_error_and_both_ways_out() -> None:
    error = docker.errors.APIError("pull access denied for staging/nope, repository does not exist")
    client = FakeClient(pull_error=error)
    with pytest.raises(ServiceUnavailable) as info:
        ensure_image(cast(Any, client), "staging/nope:0")
    text = str(info.value)
    assert "staging/nope:0" in info.value.message
    assert "pull access denied" in (info.value.observed or "")
    assert "bash compose/images/build.sh" in info.value.hint
    assert "STAGING_POSTGRES_IMAGE" in info.value.hint
    assert "--backend process" in info.value.hint
    assert "Hint:" in text
    assert info.value.diagnosis().failure_class is FailureClass.SERVICES_UNAVAILABLE


def test_start_with_an_unpullable_image_creates_nothing_and_leaks_no_password() -> None:
    client = FakeClient(pull_error=docker.errors.APIError("no such host"))
    spec = ServiceSpec(run_id="r1", postgres_image="staging/does-not-exist:0")
    service = _backend(client).postgres(spec, PASSWORD)
    with pytest.raises(ServiceUnavailable) as info:
        service.start()
    assert "staging/does-not-exist:0" in str(info.value)
    assert PASSWORD not in str(info.value)
    assert client.containers.containers == []
    service.stop()  # nothing started: a no-op, not an error


# --- engine -------------------------------------------------------------------------------


def test_engine_status_says_why_when_no_engine_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)
    ok, why = docker_engine_status()
    assert ok is False
    assert NO_ENGINE in why


def test_no_engine_is_service_unavailable_with_the_process_backend_as_way_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)
    with pytest.raises(ServiceUnavailable) as info:
        _ = DockerBackend().client
    assert "--backend process" in info.value.hint
    assert NO_ENGINE in (info.value.expected or "")


# --- sweep --------------------------------------------------------------------------------


def test_sweep_removes_dead_owners_of_this_host_and_nothing_else() -> None:
    host = socket.gethostname()
    dead = FakeContainer("dead000000000001", _labels("run-dead", f"{host}:{_dead_pid()}"))
    live = FakeContainer("live000000000001", _labels("run-live", owner_id()))
    remote = FakeContainer("remote0000000001", _labels("run-remote", f"other-{host}:{_dead_pid()}"))
    odd = FakeContainer("odd0000000000001", _labels("run-odd", f"{host}:not-a-pid"))
    client = FakeClient(containers=[dead, live, remote, odd])

    removed = _backend(client).sweep()

    assert dead.removed
    assert not (live.removed or remote.removed or odd.removed)
    assert len(removed) == 1
    assert "run-dead" in removed[0] and dead.short_id in removed[0]


def test_sweep_keeps_detached_runs_unless_asked(_state_dir: Path) -> None:
    host = socket.gethostname()
    detached = FakeContainer("det0000000000001", _labels("run-up", f"{host}:{_dead_pid()}"))
    client = FakeClient(containers=[detached])
    mark_detached("run-up")

    assert _backend(client).sweep() == []
    assert not detached.removed

    assert len(_backend(client).sweep(include_detached=True)) == 1
    assert detached.removed
    assert "run-up" not in detached_runs(_state_dir)


def test_sweep_does_not_report_a_container_removed_meanwhile() -> None:
    host = socket.gethostname()
    raced = FakeContainer("race000000000001", _labels("run-race", f"{host}:{_dead_pid()}"))
    raced.vanished = True
    assert _backend(FakeClient(containers=[raced])).sweep() == []


def test_stop_run_removes_that_run_whoever_owns_it() -> None:
    mine = FakeContainer("mine000000000001", _labels("run-a", owner_id()))
    other = FakeContainer("othr000000000001", _labels("run-b", owner_id()))
    removed = _backend(FakeClient(containers=[mine, other])).stop_run("run-a")
    assert mine.removed and not other.removed
    assert len(removed) == 1 and "run-a" in removed[0]


def test_detach_marks_the_run_for_later_sweeps(_state_dir: Path) -> None:
    _backend(FakeClient()).detach("run-kept")
    assert "run-kept" in detached_runs(_state_dir)


# --- a service's bookkeeping --------------------------------------------------------------


def test_stop_is_idempotent_and_keeps_the_redacted_log(monkeypatch: pytest.MonkeyPatch) -> None:
    service = cast(Any, _backend(FakeClient()).postgres(ServiceSpec(run_id="r2"), PASSWORD))
    container = FakeContainer("pg00000000000001", {}, logs=f"FATAL: {PASSWORD}\n".encode())
    service._container = container  # as start() leaves it

    assert PASSWORD not in service.log_tail()
    service.stop()
    service.stop()

    assert container.removed
    assert "FATAL" in service.log_tail()
    assert PASSWORD not in service.full_log()


def test_an_unstarted_service_has_no_endpoint() -> None:
    service = _backend(FakeClient()).temporal(ServiceSpec(run_id="r3"))
    with pytest.raises(ServiceUnavailable, match="not started"):
        service.endpoint()


def test_testcontainers_never_starts_ryuk() -> None:
    assert docker_backend.testcontainers_config.ryuk_disabled is True
    assert os.environ["TESTCONTAINERS_RYUK_DISABLED"] == "true"
