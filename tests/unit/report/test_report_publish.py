"""publish(): the artifacts of one run, against a real temporary git repository."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote, quote_plus

import pytest
from report_helpers import green_verdict, red_env_file_removed

from staging.commands.console import RunConsole
from staging.config.load import LoadedConfig
from staging.config.model import StagingConfig
from staging.context import ConfigDone, RunContext, RunOptions
from staging.gate.decide import GateState, decide
from staging.gate.store import VerdictStore
from staging.redact import Redactor
from staging.report import publish
from staging.workspace import tree_hash

SECRET = "pa@ss:w/o%rd#'\" x1"
GATE_KEY = "gate-key: $ecret/%#'\" k"
EXPECTED = "Settings.model_config.env_file: '.env' -> None (db_password now from default)"
SETTINGS = """\
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    db_password: str = ""
"""


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    repo = tmp_path / "everflow-app"
    (repo / "everflow").mkdir(parents=True)
    (repo / "pyproject.toml").write_text("[tool.staging]\n")
    (repo / "everflow" / "__init__.py").write_text("")
    (repo / "everflow" / "settings.py").write_text(SETTINGS)
    (repo / "everflow" / "activities.py").write_text("X = 1\n")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "initial")
    for name in ("STAGING_GATE_KEY", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(name, raising=False)
    return repo


def context(app: Path | None, run_id: str, redactor: Redactor | None = None) -> RunContext:
    redactor = redactor or Redactor()
    ctx = RunContext(
        options=RunOptions(project=app or Path(".")),
        console=RunConsole(redactor, quiet=True),
        redactor=redactor,
        run_id=run_id,
    )
    if app is not None:
        config = StagingConfig.model_validate(
            {
                "settings": {"class": "everflow.settings:Settings"},
                "worker": {"command": ["python", "-m", "everflow.worker"], "task_queue": "q"},
            }
        )
        loaded = LoadedConfig(
            config=config,
            pyproject=app / "pyproject.toml",
            project_dir=app,
            app_dir=app,
            python="python",
        )
        ctx.put(ConfigDone(loaded, app / ".staging" / "runs" / run_id))
    return ctx


def with_tree(verdict: dict[str, Any], app: Path) -> dict[str, Any]:
    tree = tree_hash(app)
    verdict["tree"] = {"hash": tree.hash, "commit": tree.commit, "dirty": tree.dirty}
    return verdict


def remove_env_file_line(app: Path) -> None:
    settings = app / "everflow" / "settings.py"
    settings.write_text(settings.read_text().replace('        env_file=".env",\n', ""))


def test_green_then_env_file_removed(app: Path) -> None:
    green = with_tree(green_verdict(run_id="run-green"), app)
    publish(context(app, "run-green"), green)
    store = VerdictStore(app)
    last = store.last_green()
    assert last is not None and last["tree"] == green["tree"]["hash"]
    assert last["settings"]["model_config"]["env_file"] == ".env"
    assert last["settings"]["fields"]["db_password"]["source"] == "dotenv"

    remove_env_file_line(app)
    red = with_tree(red_env_file_removed(run_id="run-red"), app)
    ctx = context(app, "run-red")
    lines = publish(ctx, red)
    assert ctx.run_dir is not None
    report = (ctx.run_dir / "report.md").read_text()
    assert "settings.secret_missing" in report
    assert EXPECTED in report
    assert "`M everflow/settings.py` — *touches configuration*" in report
    assert '-        env_file=".env",' in report
    assert any(EXPECTED in line for line in lines)
    # The red run is recorded for its tree; the last green stays the green one.
    last = store.last_green()
    assert last is not None and last["run_id"] == "run-green"
    assert decide(store, tree_hash(app), key=None).state is GateState.RUN_FAILED
    junit = (ctx.run_dir / "junit.xml").read_text()
    assert 'type="settings.secret_missing"' in junit


def test_no_secret_in_any_artifact(app: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = app.parent / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("STAGING_GATE_KEY", GATE_KEY)
    publish(context(app, "run-green"), with_tree(green_verdict(run_id="run-green"), app))

    # The code changes in a way that puts the secret into the diff as well.
    (app / "everflow" / "activities.py").write_text(
        f"FALLBACK = {json.dumps('postgresql://app:' + quote(SECRET, safe='') + '@db/app')}\n"
        f"NOTE = {SECRET!r}\n"
    )
    red = with_tree(red_env_file_removed(run_id="run-red"), app)
    red["diagnosis"]["cause"] += f" (password {SECRET})"
    red["diagnosis"]["evidence"].append(
        f"psycopg: password={SECRET} url=postgresql://app:{quote(SECRET)}@h/db"
    )
    red["phases"][-1]["diagnosis"] = red["diagnosis"]
    red["phases"][0]["details"]["summary"] = f"DB_PASSWORD={SECRET}"
    red["settings"]["provenance"][0]["value"] = SECRET
    red["notifications"] = [{"name": "slack", "body": {"text": f"failed: {SECRET}"}}]
    red["notes"] = [json.dumps({"password": SECRET})]
    redactor = Redactor([SECRET])
    publish(context(app, "run-red", redactor), red)

    needles = {
        SECRET,
        quote(SECRET, safe=""),
        quote(SECRET),
        quote_plus(SECRET),
        json.dumps(SECRET)[1:-1],
        GATE_KEY,
        json.dumps(GATE_KEY)[1:-1],
    }
    files = [p for p in (app / ".staging").rglob("*") if p.is_file()] + [summary]
    assert {p.name for p in files} >= {"report.md", "junit.xml", "last-green.json", summary.name}
    assert len(list((app / ".staging" / "verdicts").glob("*.json"))) == 2
    for path in files:
        text = path.read_text()
        for needle in needles:
            assert needle not in text, f"{path} contains a secret"
    assert "***" in (app / ".staging" / "runs" / "run-red" / "report.md").read_text()


def test_signed_record_when_the_key_is_set(app: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAGING_GATE_KEY", GATE_KEY)
    lines = publish(context(app, "r1"), with_tree(green_verdict(run_id="r1"), app))
    assert any("(signed)" in line for line in lines)
    decision = decide(
        VerdictStore(app), tree_hash(app), key=GATE_KEY.encode(), require_signature=True
    )
    assert decision.open


def test_aborted_at_config_still_writes_the_reports(tmp_path: Path) -> None:
    ctx = context(None, "r0")
    # A run dir with no loaded config behind it: the reports must not need one.
    ctx.put(ConfigDone(cast(Any, None), tmp_path / "runs" / "r0"))
    verdict = {
        "run_id": "r0",
        "status": "aborted",
        "app_dir": None,
        "tree": None,
        "phases": [
            {
                "name": "config",
                "status": "aborted",
                "duration": 0.01,
                "started_at": 0.0,
                "details": {},
                "diagnosis": {
                    "class": "config.invalid",
                    "cause": "no [tool.staging]",
                    "hint": "add",
                },
            }
        ],
        "pipelines": [],
        "settings": {"class": None, "delivery": None, "model_config": None, "provenance": []},
        "notifications": [],
        "diagnosis": {"class": "config.invalid", "cause": "no [tool.staging]", "hint": "add"},
    }
    lines = publish(ctx, verdict)
    assert (ctx.run_dir / "report.md").is_file() and (ctx.run_dir / "junit.xml").is_file()
    assert not any(line.startswith("could not") for line in lines)


def test_an_interrupted_run_does_not_replace_the_verdict_of_its_tree(app: Path) -> None:
    publish(context(app, "r1"), with_tree(green_verdict(run_id="r1"), app))
    interrupted = with_tree(green_verdict(run_id="r2"), app)
    interrupted.update(
        status="aborted",
        diagnosis={"class": "interrupted", "cause": "by SIGINT", "hint": "run it again"},
    )
    publish(context(app, "r2"), interrupted)
    assert decide(VerdictStore(app), tree_hash(app), key=None).open


def test_one_failing_artifact_does_not_stop_the_others(
    app: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary_dir = app.parent / "a-directory"
    summary_dir.mkdir()
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary_dir))
    ctx = context(app, "r1")
    lines = publish(ctx, with_tree(green_verdict(run_id="r1"), app))
    assert any(line.startswith("could not write the GitHub step summary") for line in lines)
    assert ctx.run_dir is not None and (ctx.run_dir / "junit.xml").is_file()
    assert VerdictStore(app).load(tree_hash(app).hash) is not None
