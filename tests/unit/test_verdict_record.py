"""A run that proves nothing about the code never becomes its tree's gate record.

Through `publish` (what `staging run` calls), on a real git tree: a green run, then an
aborted one of the same tree (a service lost mid-run, a full disk, staging's own bug).
The gate stays open on the green record and the run says the record is unchanged.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from staging.commands.console import RunConsole
from staging.config.load import LoadedConfig
from staging.config.model import StagingConfig
from staging.context import ConfigDone, RunContext, RunOptions
from staging.gate.coverage import Coverage
from staging.gate.decide import GateState, decide
from staging.gate.store import NOT_RECORDED, VerdictStore
from staging.redact import Redactor
from staging.report import publish
from staging.workspace import tree_hash


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    repo = tmp_path / "app"
    repo.mkdir()
    (repo / "pyproject.toml").write_text("[tool.staging]\n")
    (repo / "worker.py").write_text("X = 1\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", "-c", "commit.gpgsign=false"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "app"]):
        subprocess.run([*git, *args], cwd=repo, check=True, capture_output=True)
    for name in ("STAGING_GATE_KEY", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(name, raising=False)
    return repo


def _context(app: Path, run_id: str) -> RunContext:
    redactor = Redactor()
    ctx = RunContext(
        options=RunOptions(project=app),
        console=RunConsole(redactor, quiet=True),
        redactor=redactor,
        run_id=run_id,
    )
    config = StagingConfig.model_validate(
        {"worker": {"command": ["python", "-m", "worker"], "task_queue": "q"}}
    )
    loaded = LoadedConfig(
        config=config, pyproject=app / "pyproject.toml", project_dir=app, app_dir=app,
        python="python",
    )  # fmt: skip
    ctx.put(ConfigDone(loaded, app / ".staging" / "runs" / run_id))
    ctx.need(ConfigDone).run_dir.mkdir(parents=True)
    return ctx


def _verdict(app: Path, run_id: str, status: str, code: int, klass: str | None) -> dict[str, Any]:
    tree = tree_hash(app)
    coverage = Coverage.of_run(["p"], ["p"], {"replay": "skipped", "checks": "passed"})
    return {
        "schema": 2,
        "run_id": run_id,
        "status": status,
        "exit_code": code,
        "tree": {"hash": tree.hash, "commit": tree.commit, "dirty": tree.dirty},
        "coverage": coverage.to_dict(),
        "phases": [],
        "pipelines": [],
        "settings": {"class": None, "delivery": None, "model_config": None, "provenance": []},
        "notifications": [],
        "diagnosis": {"class": klass, "cause": "c", "evidence": [], "hint": "h"} if klass else None,
        "notes": [],
    }


@pytest.mark.parametrize(
    "klass", ["services.lost", "environment.unwritable", "internal.error", "services.unavailable"]
)
def test_an_aborted_run_keeps_the_green_record(app: Path, klass: str) -> None:
    publish(_context(app, "r1-green"), _verdict(app, "r1-green", "passed", 0, None))
    lines = publish(_context(app, "r2-lost"), _verdict(app, "r2-lost", "aborted", 2, klass))
    assert NOT_RECORDED in lines
    decision = decide(VerdictStore(app), tree_hash(app), key=None)
    assert decision.open and decision.verdict is not None
    assert decision.verdict["run_id"] == "r1-green"


def test_an_app_failure_replaces_it(app: Path) -> None:
    publish(_context(app, "r1-green"), _verdict(app, "r1-green", "passed", 0, None))
    lines = publish(_context(app, "r2-red"), _verdict(app, "r2-red", "failed", 1, "check.failed"))
    assert NOT_RECORDED not in lines
    assert decide(VerdictStore(app), tree_hash(app), key=None).state is GateState.RUN_FAILED
