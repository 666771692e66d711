"""The incident, replayed against the gate: green, then `env_file` removed.

A deploy of the green tree is allowed; the broken change closes the gate before any
run; its red run names the drift in one line; the deploy command never runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.corpus import load_case, materialize

pytestmark = [pytest.mark.process, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
DRIFT = "Settings.model_config.env_file: '.env' -> None (db_password now from default)"


def staging(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "staging", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_green_then_env_file_removed(tmp_path: Path) -> None:
    app = materialize("good", tmp_path / "app")
    marker = tmp_path / "deployed"
    deploy = [sys.executable, "-c", f"open({str(marker)!r}, 'w').write('x')"]

    green = staging("run", "--project", str(app), "--backend", "process")
    assert green.returncode == 0, green.stdout[-3000:]
    opened = staging("gate", "--project", str(app), "--", *deploy)
    assert opened.returncode == 0, opened.stderr
    assert marker.exists()
    marker.unlink()

    patch = load_case("env-file-removed").patch
    assert patch is not None
    subprocess.run(["git", "apply", str(patch)], cwd=app, check=True)

    untested = staging("gate", "--project", str(app), "--", *deploy)
    assert untested.returncode == 1
    assert "everflow/settings.py" in untested.stdout + untested.stderr
    assert not marker.exists()

    red = staging("run", "--project", str(app), "--backend", "process")
    assert red.returncode == 1, red.stdout[-3000:]
    assert DRIFT in red.stdout

    run_dir = sorted((app / ".staging" / "runs").iterdir())[-1]
    report = (run_dir / "report.md").read_text()
    assert "settings.secret_missing" in report and DRIFT in report
    junit = ET.parse(run_dir / "junit.xml").getroot()
    failures = [f.get("message", "") for f in junit.iter("failure")]
    assert any(m.startswith("settings.secret_missing") for m in failures), failures

    closed = staging("gate", "--project", str(app), "--", *deploy)
    assert closed.returncode == 1
    assert "settings.secret_missing" in closed.stdout + closed.stderr
    assert "STOP" in closed.stdout + closed.stderr
    assert not marker.exists()


SECOND_PIPELINE = """
[[tool.staging.pipelines]]
name = "everflow-again"
command = ["python", "scripts/run_pipeline.py", "everflow"]
"""


def test_a_partial_run_passes_but_does_not_open_the_gate(tmp_path: Path) -> None:
    """`staging run --pipeline everflow` of two pipelines: a partial pass, gate closed."""
    app = materialize("good", tmp_path / "app")
    with (app / "pyproject.toml").open("a") as fh:
        fh.write(SECOND_PIPELINE)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "commit", "-qam", "a second pipeline"], cwd=app, check=True)

    part = staging("run", "--project", str(app), "--backend", "process", "--pipeline", "everflow")
    assert part.returncode == 0, part.stdout[-3000:] + part.stderr[-2000:]
    assert "partial run: 1 of 2 pipelines" in part.stdout + part.stderr
    run_dir = sorted((app / ".staging" / "runs").iterdir())[-1]
    verdict = json.loads((run_dir / "verdict.json").read_text())
    assert verdict["coverage"]["configured"] == ["everflow", "everflow-again"]
    assert verdict["coverage"]["ran"] == ["everflow"]
    assert verdict["coverage"]["complete"] is False
    assert verdict["tree"]["excluded_tracked"] == []
    assert "partial run: 1 of 2 pipelines" in (run_dir / "report.md").read_text()

    closed = staging("gate", "--project", str(app))
    assert closed.returncode == 1
    assert "partial run" in closed.stderr and "everflow-again" in closed.stderr


def test_staging_record_leaves_the_gate_it_opened_open(tmp_path: Path) -> None:
    """`staging record` writes into .staging/histories/ and says so; the tree is unchanged."""
    app = materialize("good", tmp_path / "app")
    recorded = staging("record", "--project", str(app), "--backend", "process")
    assert recorded.returncode == 0, recorded.stdout[-3000:] + recorded.stderr[-2000:]
    dest = app / ".staging" / "histories"
    files = sorted(dest.glob("*.json"))
    assert files, recorded.stdout[-3000:]
    out = recorded.stdout + recorded.stderr
    assert f"workflow history file(s) in {dest}" in out and "the gate is unaffected" in out
    assert json.loads(files[0].read_text())["events"]
    opened = staging("gate", "--project", str(app))
    assert opened.returncode == 0, opened.stderr
