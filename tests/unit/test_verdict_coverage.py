"""build_verdict records what the run covered and which tracked files the tree left out."""

from __future__ import annotations

from pathlib import Path

import pytest

from staging.commands.console import RunConsole
from staging.config.load import LoadedConfig
from staging.config.model import StagingConfig
from staging.context import ConfigDone, PipelineRecord, RunContext, RunOptions, TreeHashed
from staging.redact import Redactor
from staging.report.markdown import render_markdown
from staging.result import PhaseResult, Status
from staging.runner import RunOutcome
from staging.verdict import SCHEMA, build_verdict
from staging.workspace import TreeInfo


def _context(tmp_path: Path, only: list[str]) -> RunContext:
    redactor = Redactor()
    ctx = RunContext(
        options=RunOptions(project=tmp_path, pipelines=only),
        console=RunConsole(redactor, quiet=True),
        redactor=redactor,
        run_id="r1",
    )
    pipeline = {"command": ["python", "-c", "pass"]}
    config = StagingConfig.model_validate(
        {
            "worker": {"command": ["python", "-m", "w"], "task_queue": "q"},
            "pipelines": [{"name": "greet", **pipeline}, {"name": "everflow", **pipeline}],
        }
    )
    loaded = LoadedConfig(
        config=config, pyproject=tmp_path / "pyproject.toml", project_dir=tmp_path,
        app_dir=tmp_path, python="python",
    )  # fmt: skip
    ctx.put(ConfigDone(loaded, tmp_path / "runs" / "r1"))
    ctx.put(TreeHashed(TreeInfo("a" * 40, None, False, 3, excluded_tracked=(".env",))))
    return ctx


def _run(ctx: RunContext, ran: list[str]) -> dict[str, object]:
    ctx.pipelines = [PipelineRecord(name, status="passed") for name in ran]
    names = ("config", "services", "workspace", "preflight", "replay", "pipelines", "checks")
    ctx.results = [PhaseResult.passed(n) for n in names if n != "replay"]
    ctx.results.insert(4, PhaseResult.skipped("replay", "no histories"))
    return build_verdict(ctx, RunOutcome(Status.PASSED, 0, ctx.results, None))


def test_a_pipeline_subset_is_recorded_as_partial(tmp_path: Path) -> None:
    verdict = _run(_context(tmp_path, ["greet"]), ["greet"])
    assert verdict["schema"] == SCHEMA == 2
    assert verdict["coverage"] == {
        "configured": ["greet", "everflow"],
        "ran": ["greet"],
        "missing": ["everflow"],
        "requested": ["greet"],
        "replay": "skipped",
        "checks": "passed",
        "complete": False,
    }
    assert verdict["tree"]["excluded_tracked"] == [".env"]  # type: ignore[index]
    report = render_markdown(verdict)  # type: ignore[arg-type]
    assert "partial run: 1 of 2 pipelines; not run: everflow" in report


def test_a_full_run_is_complete(tmp_path: Path) -> None:
    verdict = _run(_context(tmp_path, []), ["greet", "everflow"])
    assert verdict["coverage"]["complete"] is True  # type: ignore[index]
    assert verdict["coverage"]["requested"] is None  # type: ignore[index]
    assert "partial run" not in render_markdown(verdict)  # type: ignore[arg-type]


def test_the_console_verdict_line_says_partial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    verdict = _run(_context(tmp_path, ["greet"]), ["greet"])
    RunConsole(Redactor(), quiet=False).verdict(verdict)
    out = capsys.readouterr()
    assert "partial run: 1 of 2 pipelines" in out.out + out.err
