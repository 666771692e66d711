"""The services phase alone, with the backend faked: what it hands on, and what it stops
itself when it fails half way (teardown only knows what was handed on)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import staging.phases.services as services_module
from staging.context import ServicesDone
from staging.phases.services import services_phase
from staging.result import Status
from tests.unit.phases.fakes import FakeCaptures, FakeEnvironment, fake_run


class Backend:
    def __init__(self) -> None:
        self.started: list[FakeEnvironment] = []

    def start(self, *args: Any, **kwargs: Any) -> FakeEnvironment:
        env = FakeEnvironment()
        self.started.append(env)
        return env


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> Backend:
    fake = Backend()
    monkeypatch.setattr(services_module, "Environment", fake)
    return fake


def test_started_services_are_handed_on_and_their_password_masked(
    tmp_path: Path, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    captures = FakeCaptures()
    monkeypatch.setattr(services_module.CaptureServer, "start", lambda names: captures)
    ctx = fake_run(tmp_path, upto="config")
    result = services_phase(ctx)
    assert result.status is Status.PASSED
    done = ctx.need(ServicesDone)
    assert done.environment is backend.started[0] and done.captures is captures
    assert "s3cret-Pw" not in ctx.redactor.text("dsn with s3cret-Pw")


def test_a_failure_after_the_services_started_stops_them(
    tmp_path: Path, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_port(names: object) -> None:
        raise OSError("no free port")

    monkeypatch.setattr(services_module.CaptureServer, "start", no_port)
    ctx = fake_run(tmp_path, upto="config")
    with pytest.raises(OSError, match="no free port"):
        services_phase(ctx)
    assert backend.started[0].stopped == 1
    assert ctx.get(ServicesDone) is None
