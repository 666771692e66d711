"""Config keys for apps as their teams have them: several workers, `cwd`, `python_path`,
`process_env` and the app's own interpreter. Bad input names the key and the file."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from staging.config.draft import draft_prestart
from staging.config.load import load_config
from staging.errors import ConfigError
from staging.phases.workspace import check_cwds, command_dirs
from staging.result import FailureClass

ONE = """
[tool.staging.worker]
command = ["python", "-m", "app.worker"]
task_queue = "app"
"""

TWO = """
[[tool.staging.workers]]
name = "orders"
command = ["python", "-m", "orders.worker"]
task_queue = "orders"
cwd = "services/orders"

[[tool.staging.workers]]
command = ["python", "-m", "billing.worker"]
task_queue = "billing"
stop_grace = 1
"""


def write(tmp_path: Path, body: str, top: str = "") -> Path:
    text = f"[tool.staging]\n{top}\n{body}"
    (tmp_path / "pyproject.toml").write_text(text, encoding="utf-8")
    return tmp_path


def error(project: Path, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(project, environ=environ or {})
    assert info.value.failure_class is FailureClass.CONFIG_INVALID
    text = str(info.value)
    assert "Hint: " in text and "pyproject.toml" in text
    return text


def test_the_single_worker_is_the_list_of_one(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, ONE), environ={}).config
    assert [(w.name, w.task_queue, w.cwd) for w in cfg.workers] == [("worker", "app", ".")]
    assert cfg.worker is cfg.workers[0]


def test_several_workers_first_is_the_default(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, TWO), environ={}).config
    assert [(w.name, w.cwd, w.stop_grace) for w in cfg.workers] == [
        ("orders", "services/orders", 5),
        ("billing", ".", 1),
    ]
    assert cfg.worker.task_queue == "orders"  # pipelines' default queue


def test_worker_and_workers_together_is_invalid(tmp_path: Path) -> None:
    assert "not both" in error(write(tmp_path, ONE + TWO))


def test_workers_need_unique_names(tmp_path: Path) -> None:
    body = TWO.replace('name = "orders"', 'name = "billing"').replace(
        'task_queue = "billing"', 'task_queue = "billing"\nname = "billing"'
    )
    assert "worker names must be unique; repeated: billing" in error(write(tmp_path, body))


def test_an_invalid_worker_in_the_list_is_reported_once(tmp_path: Path) -> None:
    text = error(write(tmp_path, TWO.replace('task_queue = "orders"\n', "")))
    assert "tool.staging.workers[0].task_queue" in text
    assert "tool.staging.worker." not in text


@pytest.mark.parametrize("cwd", ["../elsewhere", "/abs", "a/../../b"])
def test_cwd_outside_the_app_is_invalid(tmp_path: Path, cwd: str) -> None:
    text = error(write(tmp_path, ONE + f'cwd = "{cwd}"\n'))
    assert "tool.staging.worker.cwd" in text and "inside the app dir" in text


def test_cwd_of_setup_and_pipelines(tmp_path: Path) -> None:
    body = ONE + (
        '[[tool.staging.setup]]\nname = "m"\ncommand = ["alembic", "upgrade", "head"]\n'
        'cwd = "db"\n[[tool.staging.pipelines]]\nname = "p"\nworkflow = "W"\ncwd = "x/"\n'
    )
    cfg = load_config(write(tmp_path, body), environ={}).config
    assert (cfg.setup[0].cwd, cfg.pipelines[0].cwd) == ("db", "x")


def test_python_path(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, ONE, 'python_path = ["src", "./lib"]'), environ={}).config
    assert cfg.python_path == ["src", "lib"]
    assert "tool.staging.python_path" in error(write(tmp_path, ONE, 'python_path = ["../x"]'))
    assert "at least one" in error(write(tmp_path, ONE, "python_path = []"))


def test_process_env_names_and_placeholders(tmp_path: Path) -> None:
    good = ONE + '[tool.staging.process_env]\nAPP_MODE = "staging"\nPG = "{postgres.host}"\n'
    assert load_config(write(tmp_path, good), environ={}).config.process_env == {
        "APP_MODE": "staging",
        "PG": "{postgres.host}",
    }
    text = error(write(tmp_path, ONE + '[tool.staging.process_env]\nPG = "{postgres.hots}"\n'))
    assert "tool.staging.process_env.PG" in text and "did you mean {postgres.host}" in text
    assert "not a valid environment variable name" in error(
        write(tmp_path, ONE + '[tool.staging.process_env]\n"1X" = "a"\n')
    )


def test_a_variable_is_a_setting_or_a_process_variable(tmp_path: Path) -> None:
    body = ONE + '[tool.staging.env]\nX = "a"\n[tool.staging.process_env]\nX = "b"\n'
    assert "X is in both" in error(write(tmp_path, body))


# --- the app's interpreter ----------------------------------------------------------------


def fake_venv(directory: Path, target: str = sys.executable) -> Path:
    python = directory / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.symlink_to(target)
    (directory / "pyvenv.cfg").write_text("home = /usr/bin\n", encoding="utf-8")
    return python


@pytest.mark.parametrize("name", [".venv", "venv"])
def test_an_app_venv_is_used_and_said(tmp_path: Path, name: str) -> None:
    python = fake_venv(tmp_path / name)
    loaded = load_config(write(tmp_path, ONE), environ={})
    assert (loaded.python, loaded.python_found) == (str(python), f"the app's {name}/")
    draft = draft_prestart(tmp_path, environ={})
    assert draft is not None and draft.python == loaded.python


def test_without_an_app_venv_the_harness_interpreter(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, ONE), environ={})
    assert (loaded.python, loaded.python_found) == (sys.executable, "")


def test_python_may_name_a_venv_dir(tmp_path: Path) -> None:
    python = fake_venv(tmp_path / "envs" / "app")
    loaded = load_config(write(tmp_path, ONE, 'python = "envs/app"'), environ={})
    assert (loaded.python, loaded.python_found) == (str(python), "")


def test_a_venv_dir_without_an_interpreter_is_invalid(tmp_path: Path) -> None:
    (tmp_path / "envs" / "app").mkdir(parents=True)
    text = error(write(tmp_path, ONE, 'python = "envs/app"'))
    assert "tool.staging.python" in text and "was not found" in text


def test_a_broken_interpreter_is_invalid(tmp_path: Path) -> None:
    """A venv whose base interpreter went away (upgraded, removed) still has its bin/python."""
    broken = tmp_path / "broken-python"
    broken.write_text("#!/bin/sh\necho 'no such interpreter' >&2\nexit 127\n", encoding="utf-8")
    os.chmod(broken, 0o755)
    text = error(write(tmp_path, ONE, 'python = "./broken-python"'))
    assert "does not run" in text and "no such interpreter" in text


# --- on disk: the workspace copy holds each cwd and python_path dir -------------------------


def test_cwd_and_python_path_exist_in_the_deployed_tree(tmp_path: Path) -> None:
    (tmp_path / "services" / "orders").mkdir(parents=True)
    (tmp_path / "src").mkdir()
    loaded = load_config(write(tmp_path, TWO, 'python_path = ["src"]'), environ={})
    check_cwds(loaded, tmp_path)  # every directory is there

    (tmp_path / "src").rmdir()
    with pytest.raises(ConfigError, match=r"tool\.staging\.python_path\[0\] in .*no such dir"):
        check_cwds(loaded, tmp_path)


def test_a_cwd_symlinked_out_of_the_app_is_invalid(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (tmp_path / "outside").mkdir()
    (app / "worker").symlink_to(tmp_path / "outside")
    loaded = load_config(write(app, ONE + 'cwd = "worker"\n'), environ={})
    with pytest.raises(ConfigError, match=r"tool\.staging\.worker\.cwd in .*leaves the app dir"):
        check_cwds(loaded, app)


def test_command_dirs_are_watched_too(tmp_path: Path) -> None:
    """A worker run in its cwd imports that dir's modules: they are the app's own too."""
    body = TWO + (
        '[[tool.staging.pipelines]]\nname = "p"\n'
        'command = ["python", "scripts/run.py"]\ncwd = "ops"\n'
        '[[tool.staging.setup]]\nname = "s"\ncommand = ["python", "/usr/lib/x.py"]\n'
    )
    loaded = load_config(write(tmp_path, body), environ={})
    assert command_dirs(loaded) == {"services/orders", ".", "ops", "ops/scripts"}
