"""The runner: STOP at the first failure, exceptions become results, teardown always runs."""

from __future__ import annotations

import os
import signal

import pytest

from staging.commands.console import RunConsole
from staging.context import RunContext, RunOptions
from staging.errors import ConfigError
from staging.redact import Redactor
from staging.result import Diagnosis, FailureClass, PhaseResult, Status
from staging.runner import Phase, RunOutcome, execute


def make_ctx() -> RunContext:
    redactor = Redactor()
    return RunContext(
        options=RunOptions(), console=RunConsole(redactor, quiet=True), redactor=redactor
    )


def run(phases: list[tuple[str, Phase]]) -> tuple[RunOutcome, list[str]]:
    calls: list[str] = []

    def finish(ctx: RunContext, outcome: RunOutcome) -> None:
        calls.append(f"finish:{outcome.status.value}")

    def teardown(ctx: RunContext, outcome: RunOutcome) -> None:
        calls.append("teardown")

    outcome = execute(make_ctx(), phases, finish=finish, teardown=teardown)
    return outcome, calls


def ok(name: str, seen: list[str]) -> Phase:
    def phase(ctx: RunContext) -> PhaseResult:
        seen.append(name)
        return PhaseResult.passed(name)

    return phase


def test_all_passed_exit_zero() -> None:
    seen: list[str] = []
    outcome, calls = run([("a", ok("a", seen)), ("b", ok("b", seen))])
    assert outcome.exit_code == 0 and outcome.status is Status.PASSED
    assert seen == ["a", "b"]
    assert calls == ["finish:passed", "teardown"]


def test_stops_at_first_failure_and_exits_one() -> None:
    seen: list[str] = []
    diag = Diagnosis(FailureClass.WORKER_CRASHED, "it died", "fix it")

    def bad(ctx: RunContext) -> PhaseResult:
        return PhaseResult.failed("b", diag)

    outcome, calls = run([("a", ok("a", seen)), ("b", bad), ("c", ok("c", seen))])
    assert seen == ["a"]
    assert outcome.exit_code == 1
    assert outcome.diagnosis == diag
    assert calls == ["finish:failed", "teardown"]


def test_staging_error_becomes_aborted_result_exit_two() -> None:
    def bad(ctx: RunContext) -> PhaseResult:
        raise ConfigError("bad key 'x' in pyproject.toml", hint="remove it")

    outcome, calls = run([("config", bad)])
    assert outcome.exit_code == 2
    assert outcome.status is Status.ABORTED
    assert outcome.diagnosis is not None
    assert outcome.diagnosis.failure_class is FailureClass.CONFIG_INVALID
    assert "teardown" in calls


def test_unexpected_exception_is_internal_error_with_traceback() -> None:
    def boom(ctx: RunContext) -> PhaseResult:
        raise RuntimeError("kaput")

    outcome, _ = run([("x", boom)])
    assert outcome.diagnosis is not None
    assert outcome.diagnosis.failure_class is FailureClass.INTERNAL_ERROR
    assert "kaput" in outcome.diagnosis.cause
    assert any("RuntimeError" in line for line in outcome.diagnosis.evidence)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_runs_teardown_then_exits(sig: signal.Signals, code: int) -> None:
    seen: list[str] = []

    def interrupted(ctx: RunContext) -> PhaseResult:
        os.kill(os.getpid(), sig)
        return PhaseResult.passed("never")

    outcome, calls = run([("a", interrupted), ("b", ok("b", seen))])
    assert outcome.exit_code == code
    assert seen == []
    assert calls == ["finish:aborted", "teardown"]
    # handlers are restored: the default SIGINT handler raises KeyboardInterrupt again
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_secrets_in_a_diagnosis_are_redacted() -> None:
    secret = "p@ss: /%#'\" word"
    ctx = make_ctx()
    ctx.redactor.add(secret)

    def leaky(c: RunContext) -> PhaseResult:
        return PhaseResult.failed(
            "x", Diagnosis(FailureClass.DB_AUTH_FAILED, f"pw {secret}", "h", (f"url {secret}",))
        )

    outcome = execute(ctx, [("x", leaky)], finish=lambda c, o: None, teardown=lambda c, o: None)
    assert outcome.diagnosis is not None
    assert secret not in outcome.diagnosis.cause + "".join(outcome.diagnosis.evidence)


def test_a_failure_outside_any_phase_still_tears_down() -> None:
    class BrokenConsole(RunConsole):
        def phase_finished(self, result: PhaseResult) -> None:
            raise RuntimeError("console exploded")

    redactor = Redactor()
    ctx = RunContext(
        options=RunOptions(), console=BrokenConsole(redactor, quiet=True), redactor=redactor
    )
    calls: list[str] = []

    outcome = execute(
        ctx,
        [("a", ok("a", []))],
        finish=lambda c, o: calls.append(f"finish:{o.status.value}"),
        teardown=lambda c, o: calls.append("teardown"),
    )

    assert calls == ["finish:aborted", "teardown"]
    assert outcome.exit_code == 2
    assert outcome.diagnosis is not None
    assert outcome.diagnosis.failure_class is FailureClass.INTERNAL_ERROR
    assert "between phases" in outcome.diagnosis.cause


def test_a_closed_stdout_silences_the_console_instead_of_ending_the_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `staging run | head -1` after head exited
    broken = os.fdopen(write_end, "w")
    monkeypatch.setattr("sys.stdout", broken)
    console = RunConsole(Redactor(), plain=True)

    console.info("first line")  # rich turns EPIPE into SystemExit; the console must not
    console.phase_finished(PhaseResult.passed("config"))

    assert console.quiet
