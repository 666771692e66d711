"""Delivery round-trips through real pydantic-settings, for the hostile values staging makes."""

from __future__ import annotations

import json
import random
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import create_model
from pydantic_settings import BaseSettings, SettingsConfigDict

from staging.errors import ConfigError
from staging.workspace import (
    DeliveryStrategy,
    Workspace,
    deliver,
    encode_dotenv_value,
    hermetic_env,
    strategy_for,
)
from staging.workspace.delivery import DotenvDelivery, EnvironDelivery, SecretsDirDelivery

Put = Callable[..., Path]

HOSTILE = [
    "p@ss:w/o%rd#1'\" x",
    "with space",
    "trailing backslash\\",
    "\\",
    "\\\\",
    '\\"',
    '"',
    "'",
    "''",
    "a # not a comment",
    "#leading hash",
    "$HOME",
    "${HOME}",
    "${HOME:-fallback}",
    "$${HOME}",
    "\\${HOME}",
    "${=:-$}",
    "${",
    "}",
    "{postgres.password}",
    "multi\nline",
    "carriage\rreturn\r\n",
    "tab\there",
    "\\n not a newline",
    "=",
    "ünïcødé ✓",
    "",
    "export X=1",
]

PIECES = ["$", "{", "}", "\\", '"', "'", "#", " ", "\n", "\r", "${", "A", ":-", "=", "\t", "ü"]


def random_values(seed: int, count: int) -> list[str]:
    """Hypothesis-style inputs without Hypothesis' on-disk cache: dotenv-hostile pieces
    mixed with arbitrary code points (no NUL, no lone surrogates: no channel carries them)."""
    rng = random.Random(seed)

    def char() -> str:
        while True:
            c = chr(rng.choice([rng.randrange(1, 128), rng.randrange(128, 0x30000)]))
            if not 0xD800 <= ord(c) <= 0xDFFF:
                return c

    return [
        "".join(
            rng.choice(PIECES) if rng.random() < 0.6 else char()
            for _ in range(rng.randrange(0, 16))
        )
        for _ in range(count)
    ]


@pytest.fixture(autouse=True)
def _no_inherited_values(monkeypatch: pytest.MonkeyPatch) -> None:
    # A real environment variable would win over the dotenv file and mask a bad encoding.
    for i in range(len(HOSTILE)):
        monkeypatch.delenv(f"V{i}", raising=False)
    monkeypatch.delenv("ONLY", raising=False)


def settings_class(names: list[str], **config: Any) -> type[BaseSettings]:
    fields: dict[str, Any] = {name.lower(): (str, "<default>") for name in names}
    model = create_model("RoundTrip", __base__=BaseSettings, **fields)
    model.model_config = SettingsConfigDict(extra="ignore", **config)  # type: ignore[typeddict-item]
    return model


@pytest.fixture
def workspace(tmp_path: Path, put: Put) -> Iterator[Workspace]:
    put(tmp_path / "app", "main.py")
    with Workspace.create(tmp_path / "app", dest_root=tmp_path) as ws:
        yield ws


def read_back(ws: Workspace, names: list[str], **config: Any) -> dict[str, str]:
    loaded = settings_class(names, **config)()
    return {name: getattr(loaded, name.lower()) for name in names}


def test_dotenv_round_trip_all_hostile_values_in_one_file(workspace: Workspace) -> None:
    rendered = {f"V{i}": value for i, value in enumerate(HOSTILE)}
    delivery = deliver(workspace, rendered, mode="dotenv", path=".env")
    env_file = workspace.app / ".env"
    assert delivery.files == [env_file]
    assert delivery.env_vars == {}
    assert delivery.channel == f"dotenv file .env ({len(HOSTILE)} variables)"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert read_back(workspace, list(rendered), env_file=env_file) == rendered


ONE_VALUE = settings_class(["ONLY", "V0"])


@pytest.mark.parametrize("seed", range(3))
def test_dotenv_round_trip_random_values(seed: int, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    for value in random_values(seed, 100):
        # A following line catches a value that swallows the rest of the file.
        env_file.write_text(f"ONLY={encode_dotenv_value(value)}\nV0=after\n", encoding="utf-8")
        loaded = ONE_VALUE(_env_file=env_file)  # type: ignore[call-arg]
        assert (loaded.only, loaded.v0) == (value, "after"), repr(value)  # type: ignore[attr-defined]


@pytest.mark.parametrize("naive", ['"${HOME}"', "'${HOME}'", "${HOME}"])
def test_python_dotenv_really_interpolates(tmp_path: Path, naive: str) -> None:
    # Why the encoding needs its ${=:-$} guard: quoting alone does not stop expansion.
    env_file = tmp_path / ".env"
    env_file.write_text(f"ONLY={naive}\n")
    loaded = settings_class(["ONLY"], env_file=env_file)()
    assert loaded.only != "${HOME}"  # type: ignore[attr-defined]


def test_secrets_dir_round_trip(workspace: Workspace) -> None:
    rendered = {f"V{i}": v for i, v in enumerate(HOSTILE) if v == v.strip() and v}
    delivery = deliver(workspace, rendered, mode="secrets_dir", path="secrets")
    secrets = workspace.app / "secrets"
    assert sorted(p.name for p in secrets.iterdir()) == sorted(rendered)
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in delivery.files)
    assert delivery.channel == f"secrets dir secrets/ ({len(rendered)} files)"
    assert delivery.notes == []
    # Field names are lower-case, files upper-case: pydantic-settings matches case-insensitively.
    assert read_back(workspace, list(rendered), secrets_dir=secrets) == rendered


def test_secrets_dir_notes_values_that_pydantic_settings_would_strip(workspace: Workspace) -> None:
    delivery = deliver(workspace, {"TOKEN": " padded "}, mode="secrets_dir", path="run/secrets")
    assert any("TOKEN" in note and "strips" in note for note in delivery.notes)
    assert "padded" not in " ".join(delivery.notes)


PROBE = """
import json, os, sys
from pydantic_settings import BaseSettings
names = json.loads(sys.argv[1])
Model = type("S", (BaseSettings,), {"__annotations__": {n.lower(): str for n in names},
                                    **{n.lower(): "<default>" for n in names}})
print(json.dumps({"values": Model().model_dump(), "leaked": os.environ.get("DB_PASSWORD")}))
"""


def test_environ_round_trip_in_a_hermetic_process(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    rendered = {f"V{i}": v for i, v in enumerate(HOSTILE) if "\0" not in v}
    delivery = deliver(workspace, rendered, mode="environ", path=".env")
    assert delivery.files == [] and delivery.env_vars == rendered
    assert delivery.channel == f"environment variables ({len(rendered)} variables)"
    assert not (workspace.app / ".env").exists()
    monkeypatch.setenv("DB_PASSWORD", "exported-by-the-developer")
    env = hermetic_env(sys.executable, extra=delivery.env_vars)
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(rendered))],
        cwd=workspace.app,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    out = json.loads(proc.stdout)
    assert out["leaked"] is None
    assert out["values"] == {k.lower(): v for k, v in rendered.items()}


def test_a_shipped_file_at_path_is_replaced_in_the_copy_only(tmp_path: Path, put: Put) -> None:
    app = tmp_path / "app"
    shipped = put(app, "config/app.env", 'DB_PASSWORD="committed"\n')
    with Workspace.create(app, dest_root=tmp_path) as ws:
        delivery = deliver(ws, {"DB_PASSWORD": "fresh"}, mode="dotenv", path="config/app.env")
        assert any("config/app.env" in note for note in delivery.notes)
        assert "fresh" in (ws.app / "config" / "app.env").read_text()
    assert shipped.read_text() == 'DB_PASSWORD="committed"\n'


@pytest.mark.parametrize("path", ["/etc/app.env", "../outside.env", "a/../../x", ""])
def test_paths_outside_the_app_are_refused(workspace: Workspace, path: str) -> None:
    with pytest.raises(ConfigError, match=r"settings\.path"):
        deliver(workspace, {"A": "1"}, mode="dotenv", path=path)


def test_nul_cannot_be_delivered(workspace: Workspace) -> None:
    with pytest.raises(ConfigError, match=r"tool\.staging\.env\.A"):
        deliver(workspace, {"A": "x\0y"}, mode="environ", path=".env")


# --- delivery modes as strategies -------------------------------------------------------


@dataclass
class Config:
    """What a strategy reads of the app's model_config (the probe's report has the same)."""

    env_files: list[str] = field(default_factory=list)
    secrets_dirs: list[str] = field(default_factory=list)


@pytest.mark.parametrize(
    ("mode", "path", "source", "source_arg", "phrase"),
    [
        ("dotenv", "config/app.env", "dotenv", "dotenv_settings", "the dotenv file config/app.env"),
        ("environ", ".env", "environment", "env_settings", "environment variables"),
        ("secrets_dir", "run/s", "secrets_dir", "file_secret_settings", "the secrets dir run/s"),
    ],
)
def test_each_mode_is_a_strategy(
    workspace: Workspace, mode: str, path: str, source: str, source_arg: str, phrase: str
) -> None:
    strategy = strategy_for(mode, path)
    assert isinstance(strategy, DeliveryStrategy) and strategy.mode == mode
    assert (strategy.source, strategy.source_arg, strategy.phrase) == (source, source_arg, phrase)
    delivery = deliver(workspace, {"A": "1"}, mode=mode, path=path)  # type: ignore[arg-type]
    assert delivery.strategy == strategy
    assert delivery.channel == strategy.describe(1)


def test_unknown_mode_is_config_invalid() -> None:
    with pytest.raises(ConfigError, match=r"settings\.delivery"):
        strategy_for("carrier_pigeon", ".env")


def test_dotenv_strategy_says_why_a_model_config_does_not_read_it() -> None:
    dotenv = DotenvDelivery(".env")
    assert dotenv.unread("Settings", Config(env_files=[".env.defaults", "./.env"])) is None
    missing = dotenv.unread("Settings", Config())
    assert missing is not None
    assert missing.cause == "Settings.model_config has no env_file, so .env is never read"
    assert missing.hint.startswith('restore env_file=".env" in Settings.model_config')
    elsewhere = dotenv.unread("Settings", Config(env_files=["config/.env"]))
    assert elsewhere is not None and "does not include .env" in elsewhere.cause
    assert 'path = "config/.env"' in elsewhere.hint


def test_secrets_dir_strategy_says_why_a_model_config_does_not_read_it() -> None:
    secrets = SecretsDirDelivery("run/secrets")
    assert secrets.unread("S", Config(secrets_dirs=["run/secrets/"])) is None
    missing = secrets.unread("S", Config())
    assert missing is not None and "S.model_config has no secrets_dir" in missing.cause
    assert EnvironDelivery().unread("S", Config()) is None  # every class reads the environment


@pytest.mark.parametrize("mode", ["dotenv", "environ", "secrets_dir"])
def test_a_class_reading_the_strategys_source_gets_the_value(
    workspace: Workspace, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`source` / `unread` tell the truth about real pydantic-settings."""
    path = {"dotenv": ".env", "environ": "", "secrets_dir": "secrets"}[mode]
    delivery = deliver(workspace, {"ONLY": "delivered"}, mode=mode, path=path)  # type: ignore[arg-type]
    for name, value in delivery.env_vars.items():
        monkeypatch.setenv(name, value)
    (workspace.app / "secrets").mkdir(exist_ok=True)  # read, even if empty: no warning
    reads = {"env_file": workspace.app / ".env", "secrets_dir": workspace.app / "secrets"}
    assert read_back(workspace, ["ONLY"], **reads) == {"ONLY": "delivered"}
    config = Config([str(workspace.app / ".env")], [str(workspace.app / "secrets")])
    strategy = strategy_for(mode, str(workspace.app / path) if path else "")
    assert strategy.unread("S", config) is None
    if mode != "environ":
        assert read_back(workspace, ["ONLY"]) == {"ONLY": "<default>"}
        assert strategy.unread("S", Config()) is not None
