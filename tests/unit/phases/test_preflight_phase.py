"""The preflight phase alone, with the app's settings probe faked: what it hands on."""

from __future__ import annotations

from pathlib import Path

import pytest

import staging.phases.preflight as preflight_module
from staging.context import PreflightDone
from staging.phases.preflight import preflight_phase
from staging.probes import FieldReport, ModelConfigReport, ProbeError, ProbeReport
from staging.result import FailureClass, Status
from tests.unit.phases.fakes import WORKER, fake_run

TABLE = {"worker": WORKER, "settings": {"class": "app.settings:Settings"}}
QUEUE = FieldReport("task_queue", "str", False, True, "q", False, "environment")


def probe(monkeypatch: pytest.MonkeyPatch, report: ProbeReport) -> None:
    monkeypatch.setattr(preflight_module, "run_probe", lambda *args, **kwargs: report)


def test_settings_that_load_pass_with_their_provenance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = ProbeReport(True, None, ModelConfigReport(), [QUEUE], settings_class="Settings")
    probe(monkeypatch, report)
    ctx = fake_run(tmp_path, TABLE)
    result = preflight_phase(ctx)
    assert result.status is Status.PASSED, result.diagnosis
    done = ctx.need(PreflightDone)
    assert done.probe is report
    assert [row["field"] for row in done.provenance] == ["task_queue"]
    assert ctx.provenance == list(done.provenance)


def test_settings_that_do_not_load_fail_and_keep_the_probe_for_the_verdict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    error = ProbeError("ValidationError", "1 validation error for Settings\ndatabase_url")
    report = ProbeReport(False, error, None, settings_class="Settings")
    probe(monkeypatch, report)
    ctx = fake_run(tmp_path, TABLE)
    result = preflight_phase(ctx)
    assert result.status is Status.FAILED and result.diagnosis is not None
    assert result.diagnosis.failure_class is FailureClass.SETTINGS_LOAD_ERROR
    assert ctx.probe is report


def test_no_settings_class_is_skipped(tmp_path: Path) -> None:
    ctx = fake_run(tmp_path)
    assert preflight_phase(ctx).status is Status.SKIPPED
    assert ctx.get(PreflightDone) is None
