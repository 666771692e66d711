"""The gallery of app shapes through `staging init` + `staging run`.

Each app (tests/gallery/<shape>/, a small real Temporal + Postgres app without a
`[tool.staging]` section) is copied into a fresh git repository, `staging init` writes its
section, and the run must be: green unchanged; red when the settings module's
`env_file=".env"` line is removed (the incident); red when the worker imports a module
that .gitignore keeps out of the deployed tree. All three on both backends.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from staging.commands.run import run_staging
from staging.context import RunOptions
from tests.gallery.shapes import (
    EXPECTED_CODE,
    SERVICE_SHAPES,
    SHAPES,
    Shape,
    commit_all,
    copy_app,
    git,
    init,
    prepare,
)

pytestmark = pytest.mark.slow

EXPECTED = EXPECTED_CODE
DOCKER_FAULTS = tuple(EXPECTED)
INCIDENT_CLASSES = {"settings.secret_missing", "settings.ignored"}


def _params() -> list[object]:
    params: list[object] = []
    for shape in SHAPES:
        for fault in EXPECTED:
            params.append(
                pytest.param(shape, fault, "process", marks=pytest.mark.process,
                             id=f"{shape.name}-{fault}-process")
            )  # fmt: skip
        for fault in DOCKER_FAULTS:
            params.append(
                pytest.param(shape, fault, "docker", marks=pytest.mark.docker,
                             id=f"{shape.name}-{fault}-docker")
            )  # fmt: skip
    return params


def _verdict(project: Path) -> dict[str, object]:
    runs = sorted((project / ".staging" / "runs").iterdir())
    assert len(runs) == 1, runs
    verdict: dict[str, object] = json.loads((runs[0] / "verdict.json").read_text())
    return verdict


@pytest.mark.parametrize(("shape", "fault", "backend"), _params())
def test_gallery_app(
    shape: Shape, fault: str, backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = prepare(shape, tmp_path / "repo", fault)
    code = run_staging(RunOptions(project=project, overrides={"backend": backend}))
    out = capsys.readouterr().out
    verdict = _verdict(project)
    diagnosis = json.dumps(verdict.get("diagnosis"), indent=1)
    assert code == EXPECTED[fault], f"{shape.name} {fault}: exit {code}\n{diagnosis}\n{out[-4000:]}"
    if shape.requirements:  # its own venv ran it, not staging's
        summary = str(verdict["phases"][0]["details"]["summary"])  # type: ignore[index]
        assert ".venv/bin/python" in summary, summary
    klass = (verdict.get("diagnosis") or {}).get("class")  # type: ignore[union-attr]
    if fault == "incident":  # red for the incident's reason, not by accident
        assert klass in INCIDENT_CLASSES, diagnosis
    if fault == "ignored-import":
        # the run fails as production would: on the missing module, named
        assert "local_only" in diagnosis, diagnosis


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
def test_init_writes_a_section_that_names_what_it_found(shape: Shape, tmp_path: Path) -> None:
    """Cheap, service-free: init appends without touching a byte of the app's file."""
    project = copy_app(shape, tmp_path / "repo", venv=False)
    before = (project / "pyproject.toml").read_bytes()
    told = init(project)
    after = (project / "pyproject.toml").read_bytes()
    assert after.startswith(before) and b"[tool.staging]" in after[len(before) :]
    assert "settings class" in told and "a Worker in" in told, told


@pytest.mark.process
@pytest.mark.parametrize(
    "shape", [s for s in (*SHAPES, *SERVICE_SHAPES) if not s.requirements], ids=lambda s: s.name
)
def test_gallery_app_own_tests_pass_in_a_committed_copy(shape: Shape, tmp_path: Path) -> None:
    """Each app's own tests, run where it would be deployed from (a clean commit)."""
    project = copy_app(shape, tmp_path / "repo")
    commit_all(tmp_path / "repo", shape.name)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout


ROLLOUT_SHAPES = ["src-setuptools", "monorepo", "two-workers", "venv-pins"]


@pytest.mark.process
@pytest.mark.parametrize("name", ROLLOUT_SHAPES)
def test_rollout_rehearses_other_shapes(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--rollout` beyond the example: the last green tree rebuilt from git (a src layout,
    an app in a repo's subdirectory, two workers, the app's own venv) hands its in-flight
    workflows to this tree's workers."""
    shape = next(s for s in SHAPES if s.name == name)
    project = prepare(shape, tmp_path / "repo")
    assert run_staging(RunOptions(project=project, overrides={"backend": "process"})) == 0
    settings = project / shape.settings_file  # a compatible change, committed
    settings.write_text(settings.read_text() + "\n# reviewed\n")
    git(tmp_path / "repo", "commit", "--quiet", "--all", "-m", "a compatible change")
    code = run_staging(
        RunOptions(project=project, overrides={"backend": "process", "rollout.enabled": True})
    )
    out = capsys.readouterr().out
    assert code == 0, out[-4000:]
    runs = sorted((project / ".staging" / "runs").iterdir())
    verdict = json.loads((runs[-1] / "verdict.json").read_text())
    rollout = next(p for p in verdict["phases"] if p["name"] == "rollout")
    assert rollout["status"] == "passed", rollout
    flights = rollout["details"]["workflows"]
    assert flights and all(f["swap_event"] for f in flights), rollout


_PYTHON_CHECKS = """
import os

import psycopg
import pytest

import ledger.activities  # the src layout's package: from the run's workspace copy

pytestmark = pytest.mark.staging_check


def test_the_workflow_wrote_entries(staging_services):
    where = os.path.abspath(ledger.activities.__file__)
    assert where.startswith(str(staging_services.app_dir)), where
    with psycopg.connect(**staging_services.postgres.conninfo()) as conn:
        (n,) = conn.execute("select count(*) from entries").fetchone()
    assert n > 0


def test_totals_add_up(staging_services):
    assert 1 == 2, "the entry totals do not add up"
"""


@pytest.mark.process
def test_python_checks_on_a_src_layout_app(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Python checks beyond the example: `tests = [...]` in a src-layout app imports the
    app's package from the workspace copy and reads the run's database; a failing test is
    the run's check.failed, naming it and its message."""
    shape = next(s for s in SHAPES if s.name == "src-setuptools")
    project = prepare(shape, tmp_path / "repo")
    checks = project / "tests" / "staging"
    checks.mkdir(parents=True)
    (checks / "test_entries.py").write_text(_PYTHON_CHECKS)
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text().replace(
        "[tool.staging]\n", '[tool.staging]\ntests = ["tests/staging"]\n', 1
    )
    pyproject.write_text(text)
    git(tmp_path / "repo", "add", "--all")
    git(tmp_path / "repo", "commit", "--quiet", "-m", "python checks")
    code = run_staging(RunOptions(project=project, overrides={"backend": "process"}))
    out = capsys.readouterr().out
    verdict = _verdict(project)
    diagnosis = verdict["diagnosis"]
    assert code == 1, out[-4000:]
    assert diagnosis["class"] == "check.failed", diagnosis  # type: ignore[index]
    cause = str(diagnosis["cause"])  # type: ignore[index]
    assert "test_totals_add_up" in cause and "the entry totals do not add up" in cause, cause
    (pipeline,) = verdict["pipelines"]  # type: ignore[misc]
    results = {c["check"].rsplit("::", 1)[-1]: c["ok"] for c in pipeline["checks"]}
    assert results.get("test_the_workflow_wrote_entries") is True, pipeline["checks"]
