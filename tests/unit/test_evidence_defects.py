"""The small defects of issue 12, each pinned by a test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from staging.commands.console import RunConsole
from staging.preflight import analyse
from staging.probes import ProbeReport
from staging.probes.settings_probe import error_report
from staging.redact import Redactor
from staging.replay.diagnose import diagnose
from staging.replay.probe import ReplayReport
from staging.result import FailureClass


def test_load_error_names_the_exception_type_once() -> None:
    try:
        raise AttributeError("'NoneType' object has no attribute 'split'")
    except AttributeError as exc:
        data = error_report(exc, with_traceback=True)
    report = ProbeReport.from_json(
        {"ok": False, "error": data, "settings_class": "app.settings:Settings"}
    )

    diagnosis = analyse(
        report,
        settings_class="app.settings:Settings",
        required=(),
        delivered={},
        channel="environ",
        staging_hosts=("127.0.0.1",),
        redactor=Redactor(),
    )

    assert diagnosis is not None
    assert diagnosis.failure_class is FailureClass.SETTINGS_LOAD_ERROR
    assert "AttributeError: 'NoneType' object has no attribute 'split'" in diagnosis.cause
    assert "AttributeError: AttributeError" not in diagnosis.cause
    # The evidence leads with the exception line, not with the traceback's first frames.
    assert diagnosis.evidence[0] == "AttributeError: 'NoneType' object has no attribute 'split'"


def test_replay_import_failure_hint_names_the_configured_worker_command() -> None:
    report = ReplayReport(
        ok=False,
        error_stage="import",
        error_type="ImportError",
        error_message="cannot import name 'x'",
    )

    with_command = diagnose(report, app_dir=Path("."), worker_command=["python", "-m", "app.w"])
    without = diagnose(report, app_dir=Path("."))

    assert with_command is not None and without is not None
    assert "`python -m app.w`" in with_command.hint
    for hint in (with_command.hint, without.hint):
        assert "<worker module>" not in hint and "<" not in hint


def _verdict(**overrides: Any) -> dict[str, Any]:
    verdict = {
        "status": "aborted",
        "run_id": "20261201-041500-ab12",
        "duration": 0.1,
        "run_dir": None,
        "diagnosis": {
            "class": "config.invalid",
            "cause": "tool.staging.worker.command: missing",
            "evidence": [],
            "hint": "add it",
        },
    }
    verdict.update(overrides)
    return verdict


def test_a_config_abort_summary_names_no_run_it_did_not_record(
    capsys: pytest.CaptureFixture[str],
) -> None:
    RunConsole(Redactor(), plain=True).verdict(_verdict())

    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("staging ABORTED in 0.1s · ")
    assert "None" not in last
    # `staging report <id>` cannot find a run that wrote no run dir: do not name one.
    assert "20261201-041500-ab12" not in last
    assert "nothing recorded" in last


def test_a_recorded_run_names_its_id_and_dir(capsys: pytest.CaptureFixture[str]) -> None:
    RunConsole(Redactor(), plain=True).verdict(_verdict(run_dir="/app/.staging/runs/r1"))

    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.endswith("· run 20261201-041500-ab12 · /app/.staging/runs/r1")
