"""`staging report` and `staging history` over a synthetic `.staging/runs/`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from report_helpers import green_verdict, red_env_file_removed

from staging.commands import history, report
from staging.gate.store import StoreError


def cli(module: object, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="staging")
    module.add_parser(parser.add_subparsers(dest="name", required=True))  # type: ignore[attr-defined]
    args = parser.parse_args(list(argv))
    code: int = module.run(args)  # type: ignore[attr-defined]
    return code


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("[tool.staging]\n")
    runs = tmp_path / ".staging" / "runs"
    for verdict in (green_verdict(), red_env_file_removed()):
        run_dir = runs / verdict["run_id"]
        run_dir.mkdir(parents=True)
        (run_dir / "verdict.json").write_text(json.dumps(verdict))
    (runs / "20250102-000000-bbbbbb" / "report.md").write_text("# the red report\n")
    return tmp_path


def test_history_lists_newest_first(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(history, "history", "--project", str(project)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["time", "run", "tree", "commit", "verdict", "class"]
    assert lines[1].split()[2:] == [
        "20250102-000000-bbbbbb",
        "bbbbbbbbbbbb",
        "cccccccc",
        "failed",
        "settings.secret_missing",
    ]
    assert lines[2].split()[2:] == ["20250101-000000-aaaaaa", "aaaaaaaaaaaa", "cccccccc", "passed"]


def test_history_n_limits(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(history, "history", "--project", str(project), "-n", "1") == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_report_shows_the_last_runs_report(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(report, "report", "--project", str(project)) == 0
    assert capsys.readouterr().out == "# the red report\n"


def test_report_of_a_given_run_renders_its_verdict(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(report, "report", "20250101", "--project", str(project)) == 0
    assert "staging PASSED" in capsys.readouterr().out


def test_report_of_an_unknown_run(project: Path) -> None:
    with pytest.raises(StoreError, match="not found"):
        cli(report, "report", "nope", "--project", str(project))
