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
    # Hints in order: pass the module through, move the import, imports_passed_through.
    hint = diagnosis.hint
    order = [
        hint.index("with_passthrough_modules('structlog')"),
        hint.index("into an activity module"),
        hint.index("workflow.unsafe.imports_passed_through()"),
    ]
    assert order == sorted(order), hint
    assert "Do not switch the worker to UnsandboxedWorkflowRunner()" in hint


def test_rich_imported_directly() -> None:
    error = parse_sandbox_error(output("rich_console"))

    assert error is not None
    assert (error.module, error.packages) == ("rich", ("rich",))
    assert error.import_line == "from rich.console import Console"


def test_library_reached_through_the_apps_own_module() -> None:
    error = parse_sandbox_error(output("app_module_chain"))

    assert error is not None
    assert error.module == "structlog"
    # The innermost app file that imported the library, not the workflow module.
    assert (error.workflow_file, error.app_line) == ("/app/applog.py", 1)
    assert error.import_line == "import structlog"
    assert "applog.py:1 `import structlog`" in error.cause()


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


def test_reexporting_package_init_is_not_blamed() -> None:
    """`pkg/__init__.py` re-exports the workflow; the culprit is pkg/workflows.py:3."""
    error = parse_sandbox_error(output("reexport_rich"))

    assert error is not None
    assert error.kind == "import" and error.module == "rich"
    assert (error.workflow_file, error.app_line) == ("/app/wf_reexport_rich/workflows.py", 3)
    assert error.import_line == "from rich.console import Console"
    diagnosis = error.diagnosis(root="/app")
    assert "wf_reexport_rich/workflows.py:3 `from rich.console import Console`" in diagnosis.cause
    # Never a hint that passes the workflow's own module (or its package) through.
    assert "__init__" not in diagnosis.hint + diagnosis.cause
    assert "with_passthrough_modules('wf_reexport_rich" not in diagnosis.hint
    assert "from wf_reexport_rich.workflows import" not in diagnosis.hint


def test_module_level_call_is_named_as_a_call_not_an_import() -> None:
    """Settings() at import time reaches pathlib.Path.expanduser through pydantic-settings."""
    error = parse_sandbox_error(output("settings_at_import"))

    assert error is not None
    assert error.blocked == "pathlib.Path.expanduser"
    assert error.kind == "call" and error.module is None
    assert (error.workflow_file, error.app_line) == ("/app/wf_settings_at_import/settings.py", 9)
    diagnosis = error.diagnosis(root="/app")
    assert "module-level call, not an import" in diagnosis.cause
    assert "wf_settings_at_import/settings.py:9 `settings = Settings()`" in diagnosis.cause
    assert "imported by wf_settings_at_import/workflows.py:3" in diagnosis.cause
    assert "activity of pathlib" not in diagnosis.hint
    assert "`settings = Settings()` at import time" in diagnosis.hint


@pytest.mark.parametrize(
    "case",
    ["structlog_import", "rich_console", "app_module_chain", "reexport_rich", "settings_at_import"],
)
def test_hint_never_unsandboxes_the_workflow_module(case: str) -> None:
    """What is passed through is a library, or an app module other than the workflow's."""
    error = parse_sandbox_error(output(case))
    assert error is not None
    assert error.module in (None, "structlog", "rich")
    # The import to move/wrap never imports a module that defines the workflow.
    for line in (error.import_line or "", error.importer or ""):
        assert ".workflows import" not in line and "import wf_" not in line, line
