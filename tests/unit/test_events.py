"""The event sink: the core reports to it, the CLI's console is one implementation of it."""

from __future__ import annotations

import pytest

from staging.commands.console import RunConsole
from staging.context import RunContext, RunOptions
from staging.errors import ConfigError
from staging.events import Event, EventSink, NullSink, RecordingSink
from staging.redact import Redactor
from staging.result import PhaseResult, Status
from staging.runner import execute


@pytest.mark.parametrize(
    "sink",
    [NullSink(), RecordingSink(), RunConsole(Redactor(), quiet=True)],
    ids=["null", "recording", "console"],
)
def test_every_sink_has_the_methods_the_core_calls(sink: object) -> None:
    assert isinstance(sink, EventSink)


def test_a_plain_object_is_not_a_sink() -> None:
    class Printer:
        def info(self, message: str) -> None: ...

    assert not isinstance(Printer(), EventSink)


def test_the_runner_reports_each_phase_to_the_sink_in_order() -> None:
    sink = RecordingSink()
    ctx = RunContext(options=RunOptions(), console=sink, redactor=Redactor())

    def broken(ctx: RunContext) -> PhaseResult:
        raise ConfigError("bad key", hint="fix it")

    def never(ctx: RunContext) -> PhaseResult:
        raise AssertionError("a phase after a failure ran")

    outcome = execute(
        ctx,
        [("config", lambda c: PhaseResult.passed("config")), ("b", broken), ("c", never)],
        finish=lambda c, o: None,
        teardown=lambda c, o: None,
    )

    assert outcome.status is Status.ABORTED
    kinds = [(e.kind, e.payload if e.kind == "phase_started" else None) for e in sink.events]
    assert kinds[:4] == [
        ("phase_started", "config"),
        ("phase_finished", None),
        ("phase_started", "b"),
        ("phase_finished", None),
    ]
    finished = sink.of("phase_finished")
    assert [(r.name, r.status) for r in finished] == [
        ("config", Status.PASSED),
        ("b", Status.ABORTED),
    ]


def test_recording_keeps_every_kind_with_its_argument() -> None:
    sink = RecordingSink()
    result = PhaseResult.passed("x")
    sink.info("i")
    sink.warn("w")
    sink.phase_started("x")
    sink.phase_finished(result)
    sink.verdict({"status": "passed"})
    sink.close()

    assert sink.events == [
        Event("info", "i"),
        Event("warn", "w"),
        Event("phase_started", "x"),
        Event("phase_finished", result),
        Event("verdict", {"status": "passed"}),
        Event("close"),
    ]
    assert sink.of("warn") == ["w"]


def test_the_null_sink_says_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    sink = NullSink()
    sink.info("i")
    sink.warn("w")
    sink.phase_started("x")
    sink.phase_finished(PhaseResult.passed("x"))
    sink.verdict({"status": "passed", "duration": 1.0, "run_id": "r"})
    sink.close()

    assert capsys.readouterr() == ("", "")


def test_the_console_redacts_what_the_sink_receives_unredacted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    redactor = Redactor()
    redactor.add("hunter2-secret")
    console = RunConsole(redactor, plain=True)

    console.warn("password hunter2-secret rejected")
    console.close()

    out = capsys.readouterr().out
    assert "rejected" in out and "hunter2-secret" not in out
