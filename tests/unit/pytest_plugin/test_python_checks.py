"""Python checks' results read back from pytest's junit XML, and the diagnosis they make."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from staging.config.model import StagingConfig
from staging.phases.python_checks import _failed, _no_results, read_junit
from staging.result import FailureClass, Status

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="1" failures="1" skipped="1" tests="5">
<testcase classname="tests.staging.test_totals" name="test_ok"
 file="tests/staging/test_totals.py" line="3" />
<testcase classname="tests.staging.test_totals" name="test_sum"
 file="tests/staging/test_totals.py" line="9">
<failure
 message="AssertionError: totals per currency differ: EUR 10 != 12&#10;assert 10 == 12"
>def test_sum():
&gt;       assert 10 == 12, "totals per currency differ: EUR 10 != 12"
E       AssertionError: totals per currency differ: EUR 10 != 12
E       assert 10 == 12</failure></testcase>
<testcase classname="tests.staging.test_totals.TestLive" name="test_x"
 file="tests/staging/test_totals.py" line="20">
<skipped type="pytest.skip" message="not today" /></testcase>
<testcase classname="tests.staging.test_db" name="test_conn"
 file="tests/staging/test_db.py" line="1">
<error
 message="failed on setup with &quot;KeyError: secret-pw&quot;"
>KeyError: secret-pw</error></testcase>
<testcase classname="" name="tests.staging.test_broken">
<error message="collection failure">ImportError: no module named nope</error></testcase>
</testsuite></testsuites>
"""


@pytest.fixture
def junit(tmp_path: Path) -> Path:
    path = tmp_path / "pytest.xml"
    path.write_text(JUNIT)
    return path


def test_each_testcase_is_read_with_its_node_id_and_message(junit: Path) -> None:
    outcomes = read_junit(junit, lambda text: text.replace("secret-pw", "***"))
    assert [o.nodeid for o in outcomes] == [
        "tests/staging/test_totals.py::test_ok",
        "tests/staging/test_totals.py::test_sum",
        "tests/staging/test_totals.py::TestLive::test_x",
        "tests/staging/test_db.py::test_conn",
        "tests.staging.test_broken",  # a module that did not import
    ]
    ok, failed, skipped, error, broken = outcomes
    assert broken.message.splitlines() == ["collection failure"]
    assert ok.passed and not ok.message
    assert not failed.passed and not failed.skipped
    assert failed.message.splitlines() == [
        "AssertionError: totals per currency differ: EUR 10 != 12",
        "assert 10 == 12",
    ]
    assert skipped.skipped and not skipped.passed
    assert "***" in error.message and "secret-pw" not in error.message


def test_the_first_failing_test_is_check_failed_naming_it(junit: Path) -> None:
    outcomes = read_junit(junit)
    result = _failed(outcomes[1], outcomes)
    assert result.status is Status.FAILED and result.diagnosis is not None
    diagnosis = result.diagnosis
    assert diagnosis.failure_class is FailureClass.CHECK_FAILED
    assert diagnosis.cause == (
        "Python check `tests/staging/test_totals.py::test_sum` failed: AssertionError: totals "
        "per currency differ: EUR 10 != 12 (2 more Python check(s) failed)"
    )
    assert diagnosis.evidence[0] == "tests/staging/test_totals.py::test_sum"
    assert "tests/staging/test_db.py::test_conn" in diagnosis.evidence
    assert "pytest tests/staging/test_totals.py::test_sum" in diagnosis.hint


def test_no_test_results_is_a_failure_with_the_output() -> None:
    result = _no_results(["tests/staging"], 1, "/venv/bin/python: No module named pytest\n")
    assert result.diagnosis is not None
    assert result.diagnosis.failure_class is FailureClass.CHECK_FAILED
    assert "observed: pytest exited 1" in result.diagnosis.cause
    assert "install pytest into the app's interpreter" in result.diagnosis.hint
    timed_out = _no_results(["tests/staging"], None, "")
    assert timed_out.diagnosis is not None and "timeout" in timed_out.diagnosis.hint


WORKER = {"command": ["python", "-m", "app.worker"], "task_queue": "q"}


def test_the_tests_key_takes_paths_inside_the_app() -> None:
    config = StagingConfig.model_validate({"worker": WORKER, "tests": ["tests/staging/"]})
    assert config.tests == ["tests/staging"]
    assert StagingConfig.model_validate({"worker": WORKER}).tests == []
    with pytest.raises(ValidationError, match="inside the app dir"):
        StagingConfig.model_validate({"worker": WORKER, "tests": ["../elsewhere"]})
