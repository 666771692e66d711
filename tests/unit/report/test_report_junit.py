from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from report_helpers import green_verdict, red_env_file_removed

from staging.report.junit import PHASES, render_junit


def counts(root: ET.Element) -> dict[str, int]:
    cases = root.iter("testcase")
    out = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for case in cases:
        out["tests"] += 1
        out["failures"] += len(case.findall("failure"))
        out["errors"] += len(case.findall("error"))
        out["skipped"] += len(case.findall("skipped"))
    return out


def parse(xml: str) -> ET.Element:
    return ET.fromstring(xml.encode("utf-8"))


def test_green_run_has_a_case_per_phase_pipeline_and_check() -> None:
    root = parse(render_junit(green_verdict()))
    suite = root.find("testsuite")
    assert suite is not None and suite.get("name") == "staging"
    names = [(c.get("classname"), c.get("name")) for c in root.iter("testcase")]
    assert [n for c, n in names if c == "staging.phases"] == list(PHASES)
    assert ("staging.pipelines", "everflow") in names
    assert ("staging.checks.everflow", "select count(*) > 0 from daily_conversions") in names
    assert counts(root) == {"tests": 11, "failures": 0, "errors": 0, "skipped": 0}
    assert suite.get("timestamp") == "2025-01-01T00:00:00"
    assert float(suite.get("time", "")) == pytest.approx(30.0)


def test_failure_carries_class_cause_evidence_and_hint() -> None:
    root = parse(render_junit(red_env_file_removed()))
    suite = root.find("testsuite")
    assert suite is not None
    found = counts(root)
    for attr in ("tests", "failures", "errors", "skipped"):
        assert int(suite.get(attr, "-1")) == found[attr], attr
        assert int(root.get(attr, "-1")) == found[attr], attr
    failures = list(root.iter("failure"))
    assert len(failures) == 1
    failure = failures[0]
    assert failure.get("type") == "settings.secret_missing"
    assert (failure.get("message") or "").startswith("settings.secret_missing: db_password")
    assert "db_password: default (empty)" in (failure.text or "")
    assert 'Hint: restore env_file=".env"' in (failure.text or "")
    # The phases after preflight were never reached: reported as skipped, not as passing.
    skipped = {c.get("name") for c in root.iter("testcase") if c.find("skipped") is not None}
    assert skipped == {"replay", "setup", "worker", "pipelines", "checks"}


def test_aborted_phase_is_an_error_and_skipped_phase_is_skipped() -> None:
    verdict = green_verdict()
    verdict["status"] = "aborted"
    verdict["phases"][1] = {
        **verdict["phases"][1],
        "status": "aborted",
        "diagnosis": {"class": "services.unavailable", "cause": "no Docker", "hint": "h"},
    }
    verdict["phases"][0] = {
        **verdict["phases"][0],
        "status": "skipped",
        "details": {"reason": "nothing to do"},
    }
    root = parse(render_junit(verdict))
    errors = list(root.iter("error"))
    assert len(errors) == 1 and errors[0].get("message") == "services.unavailable: no Docker"
    config = next(c for c in root.iter("testcase") if c.get("name") == "config")
    skipped = config.find("skipped")
    assert skipped is not None and skipped.get("message") == "nothing to do"


def test_interrupted_run_is_an_error_case_of_its_own() -> None:
    verdict = green_verdict()
    verdict.update(status="aborted", phases=verdict["phases"][:2], pipelines=[])
    verdict["diagnosis"] = {"class": "interrupted", "cause": "by SIGINT", "hint": "again"}
    root = parse(render_junit(verdict))
    run = next(c for c in root.iter("testcase") if c.get("name") == "run")
    error = run.find("error")
    assert error is not None and error.get("message") == "interrupted: by SIGINT"


def test_failed_check_and_pipeline() -> None:
    verdict = green_verdict()
    verdict["status"] = "failed"
    verdict["pipelines"][0]["checks"][0].update(ok=False, value="False")
    root = parse(render_junit(verdict))
    check = next(
        c for c in root.iter("testcase") if c.get("classname") == "staging.checks.everflow"
    )
    failure = check.find("failure")
    assert failure is not None and failure.get("type") == "check.failed"


def test_partial_verdict_and_control_characters() -> None:
    verdict = {
        "run_id": "r",
        "status": "aborted",
        "phases": [
            {
                "name": "config",
                "status": "aborted",
                "duration": 0.1,
                "diagnosis": {
                    "class": "config.invalid",
                    "cause": "bad\x1b[31m key\x00",
                    "evidence": ["\x07bell"],
                    "hint": "fix",
                },
            }
        ],
        "diagnosis": {"class": "config.invalid", "cause": "bad key", "hint": "fix"},
    }
    root = parse(render_junit(verdict))  # parses: no control characters left
    assert counts(root)["errors"] == 1
    assert counts(root)["skipped"] == len(PHASES) - 1


def test_redactor_applies_to_every_text() -> None:
    verdict = red_env_file_removed()
    xml = render_junit(verdict, lambda text: text.replace("db_password", "XX"))
    assert "db_password" not in xml


def test_phase_names_match_the_runner() -> None:
    phases = pytest.importorskip("staging.phases", reason="the run pipeline is not importable")
    assert tuple(name for name, _ in phases.RUN_PHASES) == PHASES
