"""The app's processes inherit nothing from the developer's shell but what they need to run."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from staging.errors import ConfigError
from staging.workspace import hermetic_env, resolve_command

SHELL = {
    "PATH": "/home/dev/.venv/bin:/home/dev/.local/bin:/usr/local/bin:/usr/bin:/bin",
    "HOME": "/home/dev",
    "LANG": "en_US.UTF-8",
    "LC_CTYPE": "en_US.UTF-8",
    "TZ": "Europe/Berlin",
    "TMPDIR": "/tmp/dev",
    "DB_PASSWORD": "exported-secret",
    "DATABASE_URL": "postgresql://prod",
    "TEMPORAL_ADDRESS": "prod.tmprl.cloud:7233",
    "PYTHONPATH": "/home/dev/src",
    "VIRTUAL_ENV": "/home/dev/.venv",
    "AWS_SECRET_ACCESS_KEY": "x",
}


def test_only_the_minimum_is_inherited() -> None:
    env = hermetic_env("/opt/py/bin/python", base=SHELL, extra={"DB_HOST": "127.0.0.1"})
    assert env == {
        "PATH": "/opt/py/bin:/usr/local/bin:/usr/bin:/bin",
        "HOME": "/home/dev",
        "LANG": "en_US.UTF-8",
        "LC_CTYPE": "en_US.UTF-8",
        "TZ": "Europe/Berlin",
        "TMPDIR": "/tmp/dev",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "DB_HOST": "127.0.0.1",
    }


def test_defaults_to_the_callers_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PASSWORD", "exported-secret")
    monkeypatch.setenv("HOME", "/home/someone")
    env = hermetic_env(sys.executable)
    assert "DB_PASSWORD" not in env
    assert env["HOME"] == "/home/someone"
    assert env["PATH"].split(":")[0] == str(Path(sys.executable).absolute().parent)


def test_venv_interpreter_sets_virtual_env_and_keeps_the_unresolved_bin_dir(
    tmp_path: Path,
) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (venv / "bin" / "python").symlink_to(sys.executable)
    env = hermetic_env(str(venv / "bin" / "python"), base={"PATH": "/usr/bin"})
    assert env["VIRTUAL_ENV"] == str(venv)
    assert env["PATH"] == f"{venv / 'bin'}:/usr/bin"


def test_path_falls_back_when_the_caller_has_no_system_dirs() -> None:
    env = hermetic_env("/opt/py/bin/python", base={"PATH": "/weird/bin"})
    assert env["PATH"] == "/opt/py/bin:/usr/local/bin:/usr/bin:/bin"


def test_resolve_command() -> None:
    assert resolve_command(["python", "-m", "app"], "/v/bin/python") == [
        "/v/bin/python",
        "-m",
        "app",
    ]
    assert resolve_command(["python3", "x.py"], "/v/bin/python") == ["/v/bin/python", "x.py"]
    assert resolve_command(["alembic", "upgrade"], "/v/bin/python") == ["alembic", "upgrade"]
    with pytest.raises(ConfigError):
        resolve_command([], "/v/bin/python")
