"""Settings judged by delivery: the real probe + `analyse` on small settings modules.

For every variable staging delivered, the field that read it is found by pydantic-settings'
own naming (env_prefix, aliases, nested delimiters, case); a variable no field took is the
incident whatever the field is called, and the message names the variable, the field, the
channel and the cause. One interpreter start per case, no services.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

import pytest

from staging.preflight import analyse, run_probe
from staging.redact import Redactor
from staging.result import Diagnosis, FailureClass
from staging.workspace.delivery import (
    DeliveryStrategy,
    DotenvDelivery,
    EnvironDelivery,
    render_dotenv,
)

pytestmark = pytest.mark.timeout(120)

PASSWORD = "p@ss:w/rd%2F#x'y\" z&"
DSN = f"postgresql://app:{quote(PASSWORD, safe='')}@127.0.0.1:5432/app"
CLASS = "app.settings:Settings"
HEAD = """
from pydantic import BaseModel, Field, AliasChoices, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
"""


def judge(
    root: Path,
    body: str,
    delivered: Mapping[str, str],
    *,
    channel: DeliveryStrategy | None = None,
    optional: Sequence[str] = (),
    loads: bool = True,
) -> Diagnosis | None:
    """Write the app, deliver `delivered` through `channel`, probe it and judge it."""
    channel = channel or DotenvDelivery(".env")
    package = root / "app"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "settings.py").write_text(HEAD + textwrap.dedent(body))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(root), "LANG": "C.UTF-8"}
    if isinstance(channel, EnvironDelivery):
        env |= delivered
    else:
        (root / channel.path).write_text(render_dotenv(delivered))
    report = run_probe(sys.executable, root, env, CLASS, (), timeout=60)
    assert report.ok is loads, report.error
    diagnosis = analyse(
        report,
        settings_class=CLASS,
        required=(),
        delivered=delivered,
        channel=channel,
        staging_hosts=("127.0.0.1", "localhost"),
        redactor=Redactor([PASSWORD]),
        optional=optional,
    )
    if diagnosis is not None:
        shown = json.dumps(diagnosis.to_dict())
        assert PASSWORD not in shown and quote(PASSWORD, safe="") not in shown
    return diagnosis


def must(diagnosis: Diagnosis | None, kind: FailureClass, *lines: str) -> Diagnosis:
    assert diagnosis is not None
    assert diagnosis.failure_class is kind, diagnosis
    for line in lines:
        assert line in diagnosis.cause, diagnosis.cause
    return diagnosis


def test_dsn_only_field_with_env_file_removed(tmp_path: Path) -> None:
    """The issue's own case: no secret-like name, a default, and "3 from default" passed."""
    body = """
    class Settings(BaseSettings):
        model_config = SettingsConfigDict(extra="ignore")
        database_url: str = "postgresql://everflow@localhost:5432/everflow"
        task_queue: str = "everflow"
    """
    d = must(
        judge(tmp_path, body, {"DATABASE_URL": DSN}),
        FailureClass.SETTINGS_SECRET_MISSING,
        "field database_url (a URL carrying credentials) resolved from its default",
        "staging delivered DATABASE_URL through the dotenv file .env",
        "Settings.model_config has no env_file, so .env is never read",
    )
    assert d.hint.startswith('restore env_file=".env" in Settings.model_config')
    assert d.evidence[0].startswith("DATABASE_URL: delivered through the dotenv file .env")


def test_non_secret_field_ignored_is_settings_ignored(tmp_path: Path) -> None:
    body = """
    class Settings(BaseSettings):
        model_config = SettingsConfigDict(extra="ignore")
        task_queue: str = "everflow"
    """
    must(
        judge(tmp_path, body, {"TASK_QUEUE": "staging-queue"}),
        FailureClass.SETTINGS_IGNORED,
        "field task_queue resolved from its default ('everflow')",
        "staging delivered TASK_QUEUE",
    )


def test_env_prefix_mismatch(tmp_path: Path) -> None:
    body = """
    class Settings(BaseSettings):
        model_config = SettingsConfigDict(env_file=".env", env_prefix="EVERFLOW_", extra="ignore")
        db_password: SecretStr = SecretStr("")
        db_host: str = "localhost"
    """
    d = must(
        judge(tmp_path, body, {"DB_HOST": "127.0.0.1", "DB_PASSWORD": PASSWORD}),
        FailureClass.SETTINGS_SECRET_MISSING,
        "field db_password (secret-like) resolved from its default",
        "staging delivered DB_PASSWORD through the dotenv file .env, but field db_password "
        "reads EVERFLOW_DB_PASSWORD (env_prefix='EVERFLOW_'): a prefix mismatch",
        "The same holds for DB_HOST.",
    )
    assert d.evidence[1].startswith(
        "DB_HOST: delivered through the dotenv file .env; meant for field db_host, which reads "
        "EVERFLOW_DB_HOST (source=default value='localhost', points at localhost)"
    )
    assert d.hint.startswith("rename DB_PASSWORD to EVERFLOW_DB_PASSWORD in [tool.staging.env]")
    assert d.hint.endswith("; the same for the 1 other variable listed")


def test_nested_delimiter_mismatch(tmp_path: Path) -> None:
    body = """
    class Db(BaseModel):
        host: str = "localhost"
        password: SecretStr = SecretStr("")

    class Settings(BaseSettings):
        model_config = SettingsConfigDict(
            env_file=".env", env_nested_delimiter="__", extra="ignore"
        )
        db: Db = Db()
    """
    d = must(
        judge(tmp_path, body, {"DB_PASSWORD": PASSWORD}),
        FailureClass.SETTINGS_SECRET_MISSING,
        "staging delivered DB_PASSWORD through the dotenv file .env, but the nested field "
        "db.password reads DB__PASSWORD (env_nested_delimiter='__'): a delimiter mismatch",
    )
    assert "rename DB_PASSWORD to DB__PASSWORD" in d.hint


def test_nested_model_without_delimiter(tmp_path: Path) -> None:
    body = """
    class Db(BaseModel):
        password: SecretStr = SecretStr("")

    class Settings(BaseSettings):
        model_config = SettingsConfigDict(env_file=".env", extra="ignore")
        db: Db = Db()
    """
    d = must(
        judge(tmp_path, body, {"DB_PASSWORD": PASSWORD}),
        FailureClass.SETTINGS_SECRET_MISSING,
        "has no env_nested_delimiter, so no single variable reaches the nested field db.password",
    )
    assert "env_nested_delimiter" in d.hint


def test_nested_delimiter_delivered_right_passes(tmp_path: Path) -> None:
    body = """
    class Db(BaseModel):
        password: SecretStr = SecretStr("")

    class Settings(BaseSettings):
        model_config = SettingsConfigDict(
            env_file=".env", env_nested_delimiter="__", extra="ignore"
        )
        db: Db = Db()
    """
    assert judge(tmp_path, body, {"DB__PASSWORD": PASSWORD}) is None


def test_field_read_through_an_alias(tmp_path: Path) -> None:
    body = """
    class Settings(BaseSettings):
        model_config = SettingsConfigDict(env_file=".env", extra="ignore")
        db_password: SecretStr = Field(SecretStr(""), validation_alias="PGPASSWORD")
    """
    d = must(
        judge(tmp_path, body, {"DB_PASSWORD": PASSWORD}),
        FailureClass.SETTINGS_SECRET_MISSING,
        "field db_password reads PGPASSWORD through its alias, not DB_PASSWORD",
    )
    assert d.hint.startswith("rename DB_PASSWORD to PGPASSWORD in [tool.staging.env]")


def test_alias_choices_delivered_right_passes(tmp_path: Path) -> None:
    body = """
    class Settings(BaseSettings):
        model_config = SettingsConfigDict(env_file=".env", extra="ignore")
        db_password: SecretStr = Field(
            SecretStr(""), validation_alias=AliasChoices("PGPASSWORD", "DATABASE_PASSWORD")
        )
    """
    assert judge(tmp_path, body, {"DATABASE_PASSWORD": PASSWORD}) is None


def test_case_sensitive_mismatch_through_environ(tmp_path: Path) -> None:
    body = """
    class Settings(BaseSettings):
        model_config = SettingsConfigDict(case_sensitive=True, extra="ignore")
        api_token: SecretStr = SecretStr("")
    """
    must(
        judge(tmp_path, body, {"API_TOKEN": PASSWORD}, channel=EnvironDelivery()),
        FailureClass.SETTINGS_SECRET_MISSING,
        "staging delivered API_TOKEN through environment variables, but Settings is "
        "case_sensitive and field api_token reads api_token: the case differs",
    )


def test_a_variable_no_field_reads(tmp_path: Path) -> None:
    body = """
    class Settings(BaseSettings):
        model_config = SettingsConfigDict(env_file=".env", extra="ignore")
        task_queue: str = "everflow"
    """
    d = must(
        judge(tmp_path, body, {"TASK_QUEUE": "q", "REGION": "eu"}),
        FailureClass.SETTINGS_IGNORED,
        "staging delivered REGION through the dotenv file .env, but no field of Settings reads it",
    )
    assert "remove REGION from [tool.staging.env]" in d.hint


def test_customised_sources_that_skip_the_dotenv(tmp_path: Path) -> None:
    body = """
    class Settings(BaseSettings):
        model_config = SettingsConfigDict(env_file=".env", extra="ignore")
        db_password: str = ""

        @classmethod
        def settings_customise_sources(
            cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
        ):
            return (init_settings, env_settings)
    """
    must(
        judge(tmp_path, body, {"DB_PASSWORD": PASSWORD}),
        FailureClass.SETTINGS_SECRET_MISSING,
        "Settings.settings_customise_sources does not return dotenv_settings",
    )


OPTIONAL_KEY = """
class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")
    task_queue: str = "everflow"
    openai_api_key: SecretStr | None = None
    slack_token: SecretStr = SecretStr("")
"""


def test_optional_secrets(tmp_path: Path) -> None:
    # `SecretStr | None = None`, not delivered: optional by the app's own declaration.
    # `slack_token` has an empty default: missing, unless `optional` names it.
    d = judge(tmp_path / "a", OPTIONAL_KEY, {"TASK_QUEUE": "q"})
    must(d, FailureClass.SETTINGS_SECRET_MISSING, "field slack_token (secret-like)")
    assert "openai_api_key" not in d.cause  # type: ignore[union-attr]
    assert (
        judge(tmp_path / "b", OPTIONAL_KEY, {"TASK_QUEUE": "q"}, optional=["SLACK_TOKEN"]) is None
    )


def test_unknown_optional_name_is_config_invalid(tmp_path: Path) -> None:
    d = judge(tmp_path, OPTIONAL_KEY, {"TASK_QUEUE": "q"}, optional=["slack_tokn"])
    must(
        d,
        FailureClass.CONFIG_INVALID,
        "pyproject.toml: [tool.staging.settings] optional names slack_tokn",
    )
    assert "slack_token" in d.hint  # type: ignore[union-attr]


def test_delivered_optional_secret_that_is_lost_still_fails(tmp_path: Path) -> None:
    body = OPTIONAL_KEY.replace('env_file=".env", ', "")
    must(
        judge(tmp_path, body, {"OPENAI_API_KEY": PASSWORD}, optional=["openai_api_key"]),
        FailureClass.SETTINGS_SECRET_MISSING,
        "staging delivered OPENAI_API_KEY",
    )


def test_a_name_mismatch_and_an_unread_channel_are_both_named(tmp_path: Path) -> None:
    body = """
    class Settings(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="EVERFLOW_", extra="ignore")
        db_password: SecretStr = SecretStr("")
    """
    d = must(
        judge(tmp_path, body, {"DB_PASSWORD": PASSWORD}),
        FailureClass.SETTINGS_SECRET_MISSING,
        "a prefix mismatch; also, Settings.model_config has no env_file, so .env is never read",
    )
    assert 'and restore env_file=".env" in Settings.model_config' in d.hint


def test_a_required_field_behind_a_prefix_mismatch_fails_to_load(tmp_path: Path) -> None:
    body = """
    class Settings(BaseSettings):
        model_config = SettingsConfigDict(env_file=".env", env_prefix="APP_", extra="ignore")
        database_url: str
    """
    d = must(
        judge(tmp_path, body, {"DATABASE_URL": DSN}, loads=False),
        FailureClass.SETTINGS_LOAD_ERROR,
        "failed to validate (database_url)",
    )
    assert d.hint.startswith("rename DATABASE_URL to APP_DATABASE_URL in [tool.staging.env]")


CUSTOM_SOURCE = """
import os
from pydantic_settings import PydanticBaseSettingsSource

class FromDatabaseUrl(PydanticBaseSettingsSource):
    \"\"\"The platform's DATABASE_URL, read into a field of another name.\"\"\"

    def get_field_value(self, field, field_name):
        return None, field_name, False

    def __call__(self):
        url = os.environ.get("DATABASE_URL")
        return {"db_url": url} if url else {}

class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")
    db_url: str = "postgresql://localhost/app"
    region: str = "eu"

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):
        return (init_settings, FromDatabaseUrl(settings_cls), env_settings)
"""


def test_a_custom_source_reading_a_variable_under_another_name(tmp_path: Path) -> None:
    delivered = {"DATABASE_URL": DSN, "REGION": "us"}
    assert judge(tmp_path / "a", CUSTOM_SOURCE, delivered, channel=EnvironDelivery()) is None
    # The probe found which variable the custom source reads, by taking it away.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), **delivered}
    report = run_probe(sys.executable, tmp_path / "a", env, CLASS, (), timeout=60)
    db_url = report.field("db_url")
    assert db_url is not None and db_url.source == "FromDatabaseUrl"
    assert "DATABASE_URL" in db_url.env_names
    region = report.field("region")
    assert region is not None and "DATABASE_URL" not in region.env_names
    # The same variable, when the custom source is no longer in the chain, is the incident.
    unhooked = CUSTOM_SOURCE.replace("FromDatabaseUrl(settings_cls), ", "")
    must(
        judge(tmp_path / "b", unhooked, delivered, channel=EnvironDelivery()),
        FailureClass.SETTINGS_SECRET_MISSING,
        "staging delivered DATABASE_URL through environment variables, but no field of "
        "Settings reads it",
    )
