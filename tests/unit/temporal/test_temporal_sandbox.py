"""Sandbox diagnosis on real worker output (fixtures/generate_sandbox_fixtures.py made them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from staging.result import FailureClass
from staging.temporal.sandbox import parse_sandbox_error

FIXTURES = Path(__file__).parent / "fixtures"


def output(case: str) -> str:
    return (FIXTURES / f"{case}.output.txt").read_text()


def test_the_incident_structlog_at_workflow_module_level() -> None:
    error = parse_sandbox_error(output("structlog_import"))

    assert error is not None
    assert error.phase == "validation"
    assert error.workflow == "EverflowPipeline"
    assert error.blocked == "random.getrandbits"
    assert error.module == "structlog"
    assert error.packages == ("structlog", "rich")
    assert error.import_line == "import structlog"
    assert error.workflow_file == "/app/wf_structlog_import.py"
    assert error.location is not None and error.location.endswith("rich/style.py:22")

    diagnosis = error.diagnosis()
    assert diagnosis.failure_class is FailureClass.WORKER_SANDBOX
    assert "'structlog'" in diagnosis.cause and "EverflowPipeline" in diagnosis.cause
    assert "workflow.unsafe.imports_passed_through()" in diagnosis.hint
    assert "with_passthrough_modules('structlog')" in diagnosis.hint
    assert "UnsandboxedWorkflowRunner()" in diagnosis.hint and "blunt" in diagnosis.hint


def test_rich_imported_directly() -> None:
    error = parse_sandbox_error(output("rich_console"))

    assert error is not None
    assert (error.module, error.packages) == ("rich", ("rich",))
    assert error.import_line == "from rich.console import Console"


def test_library_reached_through_the_apps_own_module() -> None:
    error = parse_sandbox_error(output("app_module_chain"))

    assert error is not None
    assert error.module == "structlog"
    # The line to wrap is the workflow module's import of the app module.
    assert error.import_line == "from applog import log"


def test_workflow_module_calling_datetime_now_at_import() -> None:
    error = parse_sandbox_error(output("datetime_now_module_level"))

    assert error is not None
    assert error.blocked == "datetime.datetime.now"
    assert error.module is None
    assert error.location == "/app/wf_datetime_now_module_level.py:4"
    assert "workflow.now()" in error.hint()


def test_runtime_sandbox_failure_of_a_running_worker() -> None:
    error = parse_sandbox_error(output("runtime_datetime_now"))

    assert error is not None
    assert error.phase == "runtime"
    assert error.workflow == "EverflowPipeline"
    assert error.location == "/app/wf_runtime_datetime_now.py:8"


def test_failure_embedded_in_a_core_log_record_only() -> None:
    """The Rust core's "Failing workflow task" line carries the traceback escaped."""
    line = next(
        line
        for line in output("runtime_datetime_now").splitlines()
        if "Failing workflow task" in line
    )

    error = parse_sandbox_error(line)

    assert error is not None
    assert error.blocked == "datetime.datetime.now"
    assert error.location == "/app/wf_runtime_datetime_now.py:8"


@pytest.mark.parametrize("text", ["", "worker started\npolling everflow\n"])
def test_unrelated_output_is_not_a_sandbox_error(text: str) -> None:
    assert parse_sandbox_error(text) is None


def test_an_ordinary_import_error_is_not_a_sandbox_error() -> None:
    text = output("module_not_found")
    assert "ModuleNotFoundError" in text

    assert parse_sandbox_error(text) is None
