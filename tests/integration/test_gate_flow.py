"""The incident, replayed against the gate: green, then `env_file` removed.

A deploy of the green tree is allowed; the broken change closes the gate before any
run; its red run names the drift in one line; the deploy command never runs.
"""

from __future__ import annotations

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
