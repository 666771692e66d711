"""The coverage record: what a run covered, and the line a partial pass shows."""

from __future__ import annotations

from typing import Any

from staging.gate.coverage import NOT_REACHED, Coverage, partial_line

DONE = {"replay": "skipped", "checks": "passed"}


def test_a_subset_is_partial_and_names_what_is_missing() -> None:
    coverage = Coverage.of_run(["greet", "everflow"], ["greet"], DONE, requested=["greet"])
    assert not coverage.complete
    assert coverage.missing == ("everflow",)
    assert coverage.summary() == "partial run: 1 of 2 pipelines"
    assert coverage.to_dict() == {
        "configured": ["greet", "everflow"],
        "ran": ["greet"],
        "missing": ["everflow"],
        "requested": ["greet"],
        "replay": "skipped",
        "checks": "passed",
        "complete": False,
    }


def test_every_pipeline_and_phase_is_complete() -> None:
    coverage = Coverage.of_run(["a", "b"], ["b", "a"], DONE)
    assert coverage.complete and coverage.summary() == "complete run: 2 of 2 pipelines"
    assert Coverage.from_verdict({"coverage": coverage.to_dict()}) == coverage


def test_a_phase_that_was_never_reached_is_not_covered() -> None:
    coverage = Coverage.of_run(["a"], ["a"], {"replay": "passed"})
    assert dict(coverage.phases)["checks"] == NOT_REACHED
    assert not coverage.complete
    assert coverage.summary() == "partial run: 1 of 1 pipelines (checks not run)"
    failed = Coverage.of_run(["a"], ["a"], {"replay": "failed", "checks": "passed"})
    assert failed.phases_not_run == ("replay",)


def test_an_app_without_pipelines_is_complete_when_replay_and_checks_ran() -> None:
    assert Coverage.of_run([], [], DONE).complete


def test_from_verdict_refuses_a_missing_or_garbled_record() -> None:
    assert Coverage.from_verdict({}) is None
    assert Coverage.from_verdict({"coverage": "complete"}) is None
    assert Coverage.from_verdict({"coverage": {"configured": ["a"], "ran": [1]}}) is None
    # `complete` in the file is ignored: the lists decide.
    forged = {"configured": ["a", "b"], "ran": ["a"], "complete": True, **DONE}
    coverage = Coverage.from_verdict({"coverage": forged})
    assert coverage is not None and not coverage.complete


def _verdict(status: str, ran: list[str]) -> dict[str, Any]:
    coverage = Coverage.of_run(["greet", "everflow"], ran, DONE)
    return {"status": status, "coverage": coverage.to_dict()}


def test_partial_line_only_for_a_partial_pass() -> None:
    line = partial_line(_verdict("passed", ["greet"]))
    assert line is not None
    assert line.startswith("partial run: 1 of 2 pipelines; not run: everflow")
    assert "staging gate` stays closed" in line
    assert partial_line(_verdict("passed", ["greet", "everflow"])) is None
    assert partial_line(_verdict("failed", ["greet"])) is None  # red says enough already
    assert partial_line({"status": "passed"}) is None
