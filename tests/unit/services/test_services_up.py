from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from staging.commands.up import ServicesConfig, read_services_config, write_up_file
from staging.errors import ConfigError


def test_defaults_without_pyproject(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STAGING_POSTGRES_IMAGE", raising=False)
    monkeypatch.delenv("STAGING_TEMPORAL_IMAGE", raising=False)
    assert read_services_config(tmp_path) == ServicesConfig()


def test_reads_the_services_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAGING_TEMPORAL_IMAGE", "local/temporal:offline")
    monkeypatch.delenv("STAGING_POSTGRES_IMAGE", raising=False)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.staging]\nbackend = "process"\n'
        '[tool.staging.postgres]\nimage = "postgres:17"\ndatabase = "db"\nuser = "u"\n'
        '[tool.staging.temporal]\nnamespace = "ns"\n'
    )
    cfg = read_services_config(tmp_path)
    assert cfg == ServicesConfig(
        "process", "db", "u", "ns", "postgres:17", "local/temporal:offline"
    )


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.staging\n")
    with pytest.raises(ConfigError) as info:
        read_services_config(tmp_path)
    assert "pyproject.toml" in info.value.message


def test_up_file_is_private_and_ignored(tmp_path: Path) -> None:
    path = write_up_file(tmp_path, {"postgres": {"password": "p@ss word"}})
    assert path == tmp_path / ".staging" / "up.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert (tmp_path / ".staging" / ".gitignore").read_text() == "*\n"
    assert json.loads(path.read_text())["postgres"]["password"] == "p@ss word"
