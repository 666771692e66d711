"""Infrastructure faults told apart from the app's: services.lost, environment.unwritable,
commands that cannot start, preloads that do not import (issue 13). Service-free."""

from __future__ import annotations

import errno
import os
import socket
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from staging.commands.console import RunConsole
from staging.context import ConfigDone, RunContext, RunOptions, ServicesDone
from staging.errors import ConfigError
from staging.phases.config import _check_preload
from staging.phases.pipelines import exit_description
from staging.process import CommandNotStarted, ManagedProcess
from staging.redact import Redactor
from staging.result import Diagnosis, FailureClass, PhaseResult, Status
from staging.runner import RunOutcome, execute, run_phase
from staging.services.base import PostgresEndpoint, TemporalEndpoint
from staging.services.connect import (
    ServiceLost,
    lost_services,
    postgres_connection,
    temporal_client,
)


def make_ctx() -> RunContext:
    redactor = Redactor()
    return RunContext(
        options=RunOptions(), console=RunConsole(redactor, quiet=True), redactor=redactor
    )


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


class FakeService:
    def __init__(self, name: str, up: bool) -> None:
        self.name, self.up = name, up

    def alive(self) -> bool:
        return self.up


class FakeEnv:
    def __init__(self, pg_port: int, temporal_port: int, services: tuple[Any, ...] = ()) -> None:
        self.postgres = PostgresEndpoint("127.0.0.1", pg_port, "app", "pw", "app")
        self.temporal = TemporalEndpoint("127.0.0.1", temporal_port, "default")
        self._services = services


# --- lost_services: the service's own alive(), else a TCP probe ---------------------------


def test_alive_decides_when_a_service_has_it(closed_port: int, listening_port: int) -> None:
    env = FakeEnv(
        listening_port, closed_port, (FakeService("postgres", False), FakeService("temporal", True))
    )
    lost = lost_services(cast(Any, env))
    assert [(name, address) for name, address, _ in lost] == [
        ("postgres", f"127.0.0.1:{listening_port}")
    ]


def test_a_port_probe_without_alive(closed_port: int, listening_port: int) -> None:
    lost = lost_services(cast(Any, FakeEnv(listening_port, closed_port)))
    assert [name for name, _, _ in lost] == ["temporal"]
    assert "refuses" in lost[0][2]


def test_nothing_lost_when_both_answer(listening_port: int) -> None:
    assert lost_services(cast(Any, FakeEnv(listening_port, listening_port))) == []


# --- the one way to connect ----------------------------------------------------------------


def test_postgres_gone_is_service_lost(closed_port: int) -> None:
    endpoint = PostgresEndpoint("127.0.0.1", closed_port, "app", "s3cret", "app")
    with pytest.raises(ServiceLost) as info:
        postgres_connection(endpoint, connect_timeout=2)
    assert info.value.service == "postgres" and str(closed_port) in info.value.address
    assert "s3cret" not in str(info.value)


def test_temporal_gone_is_service_lost(closed_port: int) -> None:
    import asyncio

    endpoint = TemporalEndpoint("127.0.0.1", closed_port, "default")
    with pytest.raises(ServiceLost) as info:
        asyncio.run(temporal_client(endpoint, connect_timeout=2))
    assert info.value.service == "temporal"


# --- the runner: when, and what is blamed ---------------------------------------------------


def test_service_lost_names_the_phase_and_the_time() -> None:
    def phase(ctx: RunContext) -> PhaseResult:
        raise ServiceLost("postgres", "127.0.0.1:5", "connection refused")

    result = run_phase(make_ctx(), "pipelines", phase)
    assert result.status is Status.ABORTED and result.diagnosis is not None
    assert result.diagnosis.failure_class is FailureClass.SERVICES_LOST
    assert "postgres (127.0.0.1:5)" in result.diagnosis.cause
    assert "during the pipelines phase" in result.diagnosis.cause
    assert "s into the run" in result.diagnosis.cause


def _stuck(ctx: RunContext) -> PhaseResult:
    diagnosis = Diagnosis(FailureClass.PIPELINE_STUCK_RETRYING, "load keeps failing", "fix")
    return PhaseResult.failed("pipelines", diagnosis)


def test_a_failure_while_a_service_is_gone_is_services_lost(
    closed_port: int, listening_port: int
) -> None:
    ctx = make_ctx()
    ctx.put(ServicesDone(cast(Any, FakeEnv(closed_port, listening_port)), cast(Any, None)))
    result = run_phase(ctx, "pipelines", _stuck)
    assert result.diagnosis is not None
    assert result.diagnosis.failure_class is FailureClass.SERVICES_LOST
    assert "postgres" in result.diagnosis.cause
    assert any("pipeline.stuck_retrying" in e for e in result.diagnosis.evidence)


def test_a_failure_with_every_service_up_stays_the_apps(listening_port: int) -> None:
    ctx = make_ctx()
    ctx.put(ServicesDone(cast(Any, FakeEnv(listening_port, listening_port)), cast(Any, None)))
    result = run_phase(ctx, "pipelines", _stuck)
    assert result.diagnosis is not None
    assert result.diagnosis.failure_class is FailureClass.PIPELINE_STUCK_RETRYING


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_a_failed_write_is_environment_unwritable(tmp_path: Path, code: int) -> None:
    target = tmp_path / ".staging" / "runs"

    def phase(ctx: RunContext) -> PhaseResult:
        raise OSError(code, os.strerror(code), str(target))

    result = run_phase(make_ctx(), "config", phase)
    assert result.status is Status.ABORTED and result.diagnosis is not None
    assert result.diagnosis.failure_class is FailureClass.ENVIRONMENT_UNWRITABLE
    assert str(target) in result.diagnosis.cause and "free of" in result.diagnosis.cause


def test_other_os_errors_stay_internal() -> None:
    def phase(ctx: RunContext) -> PhaseResult:
        raise OSError(errno.EBADF, "Bad file descriptor")

    result = run_phase(make_ctx(), "setup", phase)
    assert result.diagnosis is not None
    assert result.diagnosis.failure_class is FailureClass.INTERNAL_ERROR


def test_finish_may_turn_the_outcome_into_an_abort() -> None:
    aborted = RunOutcome(
        Status.ABORTED,
        2,
        [],
        Diagnosis(FailureClass.ENVIRONMENT_UNWRITABLE, "could not write", "free space"),
    )
    seen: list[int] = []
    outcome = execute(
        make_ctx(),
        [("a", lambda ctx: PhaseResult.passed("a"))],
        finish=lambda ctx, o: aborted,
        teardown=lambda ctx, o: seen.append(o.exit_code),
    )
    assert outcome.exit_code == 2 and seen == [2]


def test_run_finish_without_a_writable_run_dir_aborts(tmp_path: Path) -> None:
    from staging.commands.run import _finish

    ctx = make_ctx()
    ctx.put(ConfigDone(cast(Any, None), tmp_path / "not-a-dir"))
    (tmp_path / "not-a-dir").write_text("a file where the run dir should be")
    passed = RunOutcome(Status.PASSED, 0, [], None)
    replaced = _finish(ctx, passed)
    assert replaced is not None and replaced.exit_code == 2
    assert replaced.diagnosis is not None
    assert replaced.diagnosis.failure_class is FailureClass.ENVIRONMENT_UNWRITABLE


# --- commands that cannot start, logs that cannot be written --------------------------------


def _start(tmp_path: Path, command: list[str], log: Path | None = None) -> ManagedProcess:
    return ManagedProcess.start(
        "setup-migrate",
        command,
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", "")},
        log_path=log or tmp_path / "logs" / "x.log",
        redactor=Redactor(),
    )


def test_a_missing_command_names_it(tmp_path: Path) -> None:
    with pytest.raises(CommandNotStarted) as info:
        _start(tmp_path, ["no-such-migrate-tool", "up"])
    diagnosis = info.value.diagnosis()
    assert diagnosis.failure_class is FailureClass.SETUP_FAILED
    assert "no-such-migrate-tool up" in diagnosis.cause
    assert "ENOENT" in diagnosis.cause or "No such file" in diagnosis.cause


def test_a_command_that_is_not_executable_names_it(tmp_path: Path) -> None:
    script = tmp_path / "migrate.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(stat.S_IRUSR | stat.S_IWUSR)
    with pytest.raises(CommandNotStarted) as info:
        _start(tmp_path, [str(script)])
    assert "Permission denied" in info.value.diagnosis().cause
    worker = info.value.as_class(FailureClass.WORKER_CRASHED).diagnosis()
    assert worker.failure_class is FailureClass.WORKER_CRASHED and str(script) in worker.cause


def test_output_is_drained_when_the_log_cannot_be_written(tmp_path: Path) -> None:
    # /dev/full answers every write with ENOSPC: the app must not block on a full pipe.
    lines = "import sys\nfor i in range(20000): print('line', i)\n"
    proc = _start(tmp_path, [sys.executable, "-c", lines], log=Path("/dev/full"))
    assert proc.wait(timeout=60) == 0
    assert proc.output(1) == "line 19999"
    assert proc.log_error is not None and "/dev/full" in proc.log_error


@pytest.mark.parametrize(
    ("code", "said"),
    [(-9, "was killed by SIGKILL"), (-15, "was killed by SIGTERM"), (3, "exited with code 3")],
)
def test_how_a_worker_ended(code: int, said: str) -> None:
    assert exit_description(code) == said


# --- preload ---------------------------------------------------------------------------------


def test_a_preload_that_does_not_import_is_config_invalid(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    with pytest.raises(ConfigError) as info:
        _check_preload(sys.executable, tmp_path, ["json", "no_such_module_xyz"], pyproject)
    message = str(info.value)
    assert "no_such_module_xyz" in message and sys.executable in message
    assert "json:" not in message


def test_preloads_that_import_pass(tmp_path: Path) -> None:
    (tmp_path / "appmod.py").write_text("")
    _check_preload(sys.executable, tmp_path, ["json", "appmod"], tmp_path / "pyproject.toml")


# --- an interrupt while an app process starts ------------------------------------------------


class _Interrupted(Exception):
    pass


def test_an_interrupt_during_spawn_is_raised_once_the_process_is_recorded() -> None:
    import signal

    from staging.signals import signals_held

    def handler(signum: int, frame: object) -> None:
        raise _Interrupted(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    steps: list[str] = []
    try:
        with pytest.raises(_Interrupted), signals_held():
            os.kill(os.getpid(), signal.SIGTERM)
            steps.append("started")
            steps.append("recorded")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert steps == ["started", "recorded"]
