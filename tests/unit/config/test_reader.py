"""`[tool.staging]` has one reader (`staging.config.table`): every entry point that reads it
— `staging run`'s config, `staging up`, the gate, the prestart draft — meets a missing file,
a TOML syntax error or a missing table with the same error."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from staging.cli import main
from staging.commands import up
from staging.config.draft import draft_prestart
from staging.config.load import load_config
from staging.config.table import StagingTable, read_staging_table
from staging.errors import ConfigError
from staging.gate.store import gate_target
from staging.services.environment import Environment

WORKER = '[tool.staging.worker]\ncommand = ["python", "-m", "app.worker"]\ntask_queue = "q"\n'


def _up(project: Path) -> None:
    up.run(argparse.Namespace(project=project, backend=None, detach=True, timeout=1.0))


ENTRY_POINTS: dict[str, Callable[[Path], object]] = {
    "reader": read_staging_table,
    "load_config": lambda p: load_config(p, environ={}),
    "gate": lambda p: gate_target(p, environ={}),
    "up": _up,
}

BROKEN = {
    "missing file": (None, r"no pyproject\.toml in "),
    "no table": ("[project]\nname = 'x'\n", r"has no \[tool\.staging\] table"),
    "syntax error": (f"[tool.staging\n{WORKER}", r"is not valid TOML \(line 1, column \d+\)"),
    "not a table": ("[tool]\nstaging = 3\n", r"tool\.staging in .* is not a table"),
}


def _project(tmp_path: Path, text: str | None) -> Path:
    if text is not None:
        (tmp_path / "pyproject.toml").write_text(text, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("case", BROKEN)
def test_every_entry_point_gives_the_same_error(tmp_path: Path, case: str) -> None:
    text, message = BROKEN[case]
    project = _project(tmp_path, text)

    rendered = {}
    for name, entry in ENTRY_POINTS.items():
        with pytest.raises(ConfigError, match=message) as info:
            entry(project)
        rendered[name] = info.value.render()

    assert len(set(rendered.values())) == 1, rendered
    assert "Hint: " in rendered["reader"]
    # The prestart draft is only a head start: it stays silent and lets the run report it.
    assert draft_prestart(project, environ={}) is None


def test_the_cli_prints_the_same_error_for_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _project(tmp_path, "[tool.staging\n")
    with pytest.raises(ConfigError) as info:
        read_staging_table(project)

    assert main(["up", "--project", str(project)]) == 2

    assert capsys.readouterr().err == f"staging up: {info.value.render()}\n"


def test_a_syntax_error_shows_the_line(tmp_path: Path) -> None:
    project = _project(tmp_path, f"[tool.staging]\nbackend = process\n{WORKER}")
    with pytest.raises(ConfigError) as info:
        read_staging_table(project)
    assert info.value.evidence == (
        f"{project.resolve()}/pyproject.toml:line 2, column 11: backend = process",
    )


def test_an_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_bytes(b"[tool.staging]\nname = '\xff'\n")
    with pytest.raises(ConfigError, match="cannot be read"):
        read_staging_table(tmp_path)


def test_the_loader_validates_the_table_the_draft_read(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    project = _project(tmp_path, f'[tool.staging]\napp_dir = "app"\npreload = ["json"]\n{WORKER}')
    read = read_staging_table(project)
    (project / "pyproject.toml").write_text("not read again [", encoding="utf-8")

    draft = draft_prestart(read, environ={})
    loaded = load_config(read, environ={})

    assert isinstance(read, StagingTable) and read.pyproject == (tmp_path / "pyproject.toml")
    assert draft is not None
    assert (draft.python, draft.app_dir, draft.preload) == (
        loaded.python,
        loaded.app_dir,
        tuple(loaded.config.preload),
    )


def test_the_reader_the_draft_and_the_gate_do_not_import_pydantic() -> None:
    # The draft starts the app's interpreter before validation, and the gate runs on deploy
    # machines: pydantic's import is what both avoid.
    code = (
        "import sys, staging.config.table, staging.config.draft, staging.gate.store\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'rich')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


class _Started(Exception):
    pass


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What `staging up` asked `Environment.start` for (and nothing started)."""
    seen: dict[str, Any] = {}

    def start(spec: Any, backend: str, **kwargs: Any) -> None:
        seen.update(spec=spec, backend=backend)
        raise _Started

    monkeypatch.setattr(Environment, "start", staticmethod(start))
    return seen


def test_up_takes_the_validated_config_with_its_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, started: dict[str, Any]
) -> None:
    monkeypatch.setenv("STAGING_TEMPORAL_IMAGE", "local/temporal:offline")
    monkeypatch.delenv("STAGING_POSTGRES_IMAGE", raising=False)
    monkeypatch.delenv("STAGING_BACKEND", raising=False)
    project = _project(
        tmp_path,
        '[tool.staging]\nbackend = "docker"\n'
        '[tool.staging.postgres]\nimage = "postgres:17"\ndatabase = "db"\nuser = "u"\n'
        f'[tool.staging.temporal]\nnamespace = "ns"\n{WORKER}',
    )
    args = argparse.Namespace(project=project, backend="process", detach=True, timeout=1.0)

    with pytest.raises(_Started):
        up.run(args)

    spec = started["spec"]
    assert started["backend"] == "process"  # --backend over the file
    assert (spec.database, spec.user, spec.namespace) == ("db", "u", "ns")
    assert (spec.postgres_image, spec.temporal_image) == ("postgres:17", "local/temporal:offline")


def test_up_refuses_the_config_run_refuses(tmp_path: Path, started: dict[str, Any]) -> None:
    project = _project(tmp_path, f'[tool.staging.postgres]\ndatabse = "db"\n{WORKER}')

    with pytest.raises(ConfigError, match="databse") as info:
        _up(project)

    assert "database" in info.value.render()  # did you mean
    assert started == {}
