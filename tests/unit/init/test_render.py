"""The rendered section parses as TOML, loads with `staging.config.load`, and is appended
to the user's file without changing a byte of it."""

from __future__ import annotations

import argparse
import os
import tomllib
from pathlib import Path

import pytest

from staging.commands import init as init_command
from staging.config.load import load_config
from staging.errors import ConfigError
from staging.init.discover import discover
from staging.init.render import render
from staging.init.write import append_section
from tests.gallery.shapes import GALLERY, SHAPES
from tests.unit.init.test_discover import SETTINGS, WORKER, WORKFLOWS, write

APP = {
    "app/__init__.py": "",
    "app/settings.py": SETTINGS,
    "app/worker.py": WORKER,
    "app/workflows.py": WORKFLOWS,
    "tests/histories/run.json": "{}",
}
USER_FILE = (
    '[project]\nname = "app"  # trailing comment, no final newline\n[tool.ruff]\nline-length = 99'
)


def args(project: Path, *, to_stdout: bool = False, create: bool = False) -> argparse.Namespace:
    return argparse.Namespace(project=project, to_stdout=to_stdout, create=create)


def test_rendered_section_loads_with_the_config_loader(tmp_path: Path) -> None:
    write(tmp_path, APP)
    (tmp_path / "pyproject.toml").write_text(USER_FILE)
    assert init_command.run(args(tmp_path)) == 0
    loaded = load_config(tmp_path, environ={})
    config = loaded.config
    assert config.settings.class_ == "app.settings:Settings"
    assert (config.settings.delivery, config.settings.path) == ("dotenv", ".env.prod")
    assert config.settings.optional == ["openai_api_key"]
    assert config.env["APP_DATABASE_URL"] == "{postgres.url}"
    assert config.worker is not None and config.worker.command == ["python", "-m", "app.worker"]
    assert config.worker.task_queue == "jobs"
    assert [(p.name, p.workflow, p.args) for p in config.pipelines] == [("job", "Job", ["staging"])]
    assert config.replay.histories == ["tests/histories/*.json"]
    text = (tmp_path / "pyproject.toml").read_text()
    assert "# TODO: arguments for custom-report(request: 'ReportRequest')" in text


def test_append_keeps_every_byte_and_the_file_mode(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_bytes(USER_FILE.encode())
    os.chmod(pyproject, 0o640)
    append_section(pyproject, '\n[tool.staging]\napp_dir = "."\n')
    after = pyproject.read_bytes()
    assert after.startswith(USER_FILE.encode())
    assert tomllib.loads(after.decode())["tool"]["ruff"]["line-length"] == 99
    assert oct(pyproject.stat().st_mode & 0o777) == oct(0o640)
    assert [p.name for p in tmp_path.iterdir()] == ["pyproject.toml"]  # no temp file left


def test_never_overwrites_an_existing_section(tmp_path: Path) -> None:
    write(tmp_path, APP)
    original = '[tool.staging.worker]\ncommand = ["x"]\ntask_queue = "q"\n'
    (tmp_path / "pyproject.toml").write_text(original)
    with pytest.raises(ConfigError) as err:
        init_command.run(args(tmp_path))
    assert "already has a [tool.staging]" in err.value.render() and "Hint:" in err.value.render()
    assert (tmp_path / "pyproject.toml").read_text() == original
    assert init_command.run(args(tmp_path, to_stdout=True)) == 0  # --print still shows it


def test_an_inline_tool_table_is_refused_not_broken(tmp_path: Path) -> None:
    write(tmp_path, APP)
    original = "tool = { black = { line-length = 88 } }\n"
    (tmp_path / "pyproject.toml").write_text(original)
    with pytest.raises(ConfigError, match="would not give valid TOML"):
        init_command.run(args(tmp_path))
    assert (tmp_path / "pyproject.toml").read_text() == original


def test_no_pyproject_needs_create(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, APP)
    with pytest.raises(ConfigError, match="--create"):
        init_command.run(args(tmp_path))
    assert not (tmp_path / "pyproject.toml").exists()
    assert init_command.run(args(tmp_path, to_stdout=True)) == 0
    printed = capsys.readouterr().out
    assert tomllib.loads(printed)["tool"]["staging"]["worker"]["task_queue"] == "jobs"
    assert not (tmp_path / "pyproject.toml").exists()
    assert init_command.run(args(tmp_path, create=True)) == 0
    assert load_config(tmp_path, environ={}).config.worker is not None


def test_an_empty_dir_still_gives_a_loadable_section_full_of_todos(tmp_path: Path) -> None:
    text = render(discover(tmp_path))
    init_command.validate(text, tmp_path / "pyproject.toml")
    assert text.count("TODO") >= 2


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
def test_every_gallery_app_renders_a_valid_section(shape: object) -> None:
    project = GALLERY / shape.name / shape.project  # type: ignore[attr-defined]
    text = render(discover(project))
    init_command.validate(text, project / "pyproject.toml")
    assert "TODO" not in text.split("[tool.staging]", 1)[1], text  # decided completely


def test_a_symlinked_pyproject_stays_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "shared" / "pyproject.toml"
    real.parent.mkdir()
    real.write_text(USER_FILE)
    link = tmp_path / "pyproject.toml"
    link.symlink_to(real)
    append_section(link, '\n[tool.staging]\napp_dir = "."\n')
    assert link.is_symlink() and "[tool.staging]" in real.read_text()
