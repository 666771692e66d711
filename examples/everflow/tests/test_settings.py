from __future__ import annotations

from pathlib import Path

import pytest
from everflow.settings import Settings
from psycopg.conninfo import conninfo_to_dict
from pydantic import SecretStr

# What staging generates: every character that means something in a URL, a shell or .env.
HOSTILE = "p@ss:w/rd%#'\" x"
FIELDS = [
    "DB_HOST",
    "DB_PORT",
    "DB_USER",
    "DB_PASSWORD",
    "DB_NAME",
    "TEMPORAL_ADDRESS",
    "TEMPORAL_NAMESPACE",
    "TASK_QUEUE",
    "SLACK_WEBHOOK_URL",
]


def dotenv_line(name: str, value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{name}="{escaped}"\n'


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cwd and no app variables in the environment: only .env can set them."""
    for name in FIELDS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_values_come_from_dotenv_in_cwd(workdir: Path) -> None:
    (workdir / ".env").write_text(
        dotenv_line("DB_HOST", "db.internal")
        + dotenv_line("DB_PORT", "6543")
        + dotenv_line("DB_PASSWORD", HOSTILE)
        + dotenv_line("TEMPORAL_ADDRESS", "temporal.internal:7233")
        + dotenv_line("SLACK_WEBHOOK_URL", "http://127.0.0.1:9/hook")
        + dotenv_line("UNRELATED", "ignored")
    )
    settings = Settings()
    assert settings.db_host == "db.internal"
    assert settings.db_port == 6543
    assert settings.db_password.get_secret_value() == HOSTILE
    assert settings.temporal_address == "temporal.internal:7233"
    assert settings.slack_webhook_url == "http://127.0.0.1:9/hook"


def test_without_dotenv_everything_is_a_default(workdir: Path) -> None:
    settings = Settings()
    assert settings.db_password.get_secret_value() == ""
    assert settings.db_host == "localhost"


def test_environment_overrides_dotenv(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (workdir / ".env").write_text(dotenv_line("DB_NAME", "from_file"))
    monkeypatch.setenv("DB_NAME", "from_env")
    assert Settings().db_name == "from_env"


def test_password_is_never_in_repr(workdir: Path) -> None:
    settings = Settings(db_password=SecretStr(HOSTILE))
    assert HOSTILE not in repr(settings)
    assert HOSTILE not in settings.describe_db()


def test_database_url_escapes_a_hostile_password(workdir: Path) -> None:
    settings = Settings(
        db_host="127.0.0.1",
        db_port=5433,
        db_user="ever flow@x",
        db_password=SecretStr(HOSTILE),
        db_name="d/b",
    )
    parsed = conninfo_to_dict(settings.database_url)
    assert parsed == {
        "host": "127.0.0.1",
        "port": "5433",
        "user": "ever flow@x",
        "password": HOSTILE,
        "dbname": "d/b",
    }
