"""The draft of `[tool.staging]` that starts the app's interpreter before validation."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from staging.config.draft import PrestartDraft, draft_prestart
from staging.config.load import load_config

WORKER = """
[tool.staging.worker]
command = ["python", "-m", "app.worker"]
task_queue = "q"
"""


def project(tmp_path: Path, top: str = "") -> Path:
    (tmp_path / "pyproject.toml").write_text(f"[tool.staging]\n{top}\n{WORKER}", encoding="utf-8")
    return tmp_path


def test_defaults_give_the_harness_interpreter_and_no_extra_preload(tmp_path: Path) -> None:
    draft = draft_prestart(project(tmp_path), environ={})

    assert draft == PrestartDraft(sys.executable, tmp_path.resolve(), ())


def test_the_draft_agrees_with_the_validated_config(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    venv_python = tmp_path / "venv" / "bin" / "python"
    venv_python.parent.mkdir(parents=True)
    venv_python.symlink_to(sys.executable)
    top = 'app_dir = "app"\npython = "venv/bin/python"\npreload = ["psycopg"]'
    path = project(tmp_path, top)

    draft = draft_prestart(path, environ={})
    loaded = load_config(path, environ={})

    assert draft is not None
    assert (draft.python, draft.app_dir, list(draft.preload)) == (
        loaded.python,
        loaded.app_dir,
        loaded.config.preload,
    )


def test_the_environment_overrides_the_interpreter(tmp_path: Path) -> None:
    name = Path(sys.executable).name
    environ = {"STAGING_PYTHON": name, "PATH": str(Path(sys.executable).parent)}

    draft = draft_prestart(project(tmp_path, 'python = "nope"'), environ=environ)

    assert draft is not None and draft.python == str(Path(sys.executable).parent / name)


@pytest.mark.parametrize(
    ("top", "environ"),
    [
        ("prestart = false", {}),
        ("", {"STAGING_PRESTART": "false"}),
        ("", {"STAGING_PRESTART": "0"}),
        ('python = "no/such/python"', {}),
        ('app_dir = "missing"', {}),
        ('preload = "psycopg"', {}),
        ("preload = [1]", {}),
        ("python = 3", {}),
    ],
)
def test_no_draft_when_disabled_or_unclear(
    tmp_path: Path, top: str, environ: dict[str, str]
) -> None:
    assert draft_prestart(project(tmp_path, top), environ=environ) is None


def test_no_draft_without_a_readable_table(tmp_path: Path) -> None:
    assert draft_prestart(tmp_path, environ={}) is None  # no pyproject.toml
    (tmp_path / "pyproject.toml").write_text("[tool.staging\n", encoding="utf-8")
    assert draft_prestart(tmp_path, environ={}) is None
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n", encoding="utf-8")
    assert draft_prestart(tmp_path, environ={}) is None


def test_prestart_is_a_top_level_environment_override(tmp_path: Path) -> None:
    loaded = load_config(project(tmp_path), environ={"STAGING_PRESTART": "false"})

    assert loaded.config.prestart is False
    assert loaded.sources["prestart"] == "env:STAGING_PRESTART"
