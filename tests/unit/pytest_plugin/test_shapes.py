"""The plugin's plain values: the attach variable, a verdict read back, database names."""

from __future__ import annotations

import pytest

from staging.pytest_plugin.attach import ATTACH_ENV, Attach
from staging.pytest_plugin.databases import _slug, quote_ident
from staging.pytest_plugin.run import Verdict
from staging.services.base import PostgresEndpoint


def test_attach_round_trips_through_the_environment() -> None:
    endpoint = PostgresEndpoint("127.0.0.1", 5432, "app", "p@ss:w/rd%#'\" x", "app")
    attach = Attach(
        postgres={**endpoint.__dict__},
        temporal={"host": "127.0.0.1", "port": 7233, "namespace": "default", "ui_url": None},
        backend="process",
        run_id="r1",
        workers=[{"name": "worker", "task_queue": "q", "pid": 12}],
    )
    back = Attach.from_env(attach.to_env())
    assert back == attach
    assert PostgresEndpoint(**back.postgres if back else {}).url == endpoint.url
    assert Attach.from_env({}) is None


def test_a_foreign_attach_value_names_the_variable() -> None:
    with pytest.raises(ValueError, match=f"{ATTACH_ENV} is not what `staging run` writes.*Hint:"):
        Attach.from_env({ATTACH_ENV: "{not json"})


VERDICT = {
    "status": "failed",
    "exit_code": 1,
    "phases": [
        {
            "name": "services",
            "status": "passed",
            "duration": 1.5,
            "details": {"backend": "process"},
        },
        {
            "name": "checks",
            "status": "failed",
            "duration": 0.4,
            "details": {},
            "diagnosis": {"class": "check.failed", "cause": "check `x` did not hold"},
        },
    ],
    "diagnosis": {
        "class": "check.failed",
        "cause": "check `x` did not hold",
        "hint": "look",
        "evidence": ["x"],
    },
}


def test_a_verdict_has_its_class_evidence_and_phases() -> None:
    verdict = Verdict.from_json(VERDICT, 1)
    assert not verdict.passed
    assert (verdict.failure_class, verdict.evidence, verdict.exit_code) == (
        "check.failed",
        ("x",),
        1,
    )
    assert verdict.phases["services"].details == {"backend": "process"}
    assert verdict.phases["checks"].failure_class == "check.failed"
    passed = Verdict.from_json({"status": "passed", "phases": [], "diagnosis": None}, 0)
    assert passed.passed and passed.failure_class is None


def test_database_names_are_quoted_and_slugged() -> None:
    assert quote_ident('we"ird') == '"we""ird"'
    assert _slug("test_x[process-1]") == "test_x_process_1"
    assert _slug("---") == "test"
