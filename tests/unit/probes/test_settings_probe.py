"""The real settings probe, run by the real interpreter against throwaway apps.

Each test writes a tiny app (a settings module with a pydantic-settings class) into a
tmp dir and runs `staging/probes/settings_probe.py` there with a hermetic environment,
the way the preflight phase does. No services; one interpreter start per probe run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

import pytest

from staging.preflight import ProbeReport, analyse, provenance_table, run_probe
from staging.probes import SETTINGS_PROBE
from staging.redact import SECRET_NAME, Redactor
from staging.result import FailureClass
from staging.workspace.delivery import DotenvDelivery

pytestmark = pytest.mark.timeout(120)  # a probe that hangs must fail, not stall the suite

PASSWORD = "p@ss:w/rd%2F#x'y\" z&"  # hostile like the generated one
CLASS = "app.settings:Settings"
LOCAL = ("127.0.0.1", "localhost")


def hermetic_env(home: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
    } | extra


def dotenv_line(name: str, value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{name}="{escaped}"\n'


def make_app(root: Path, body: str, *, dotenv: Mapping[str, str] | None = None) -> Path:
    """`root/app/settings.py` holding `body`; `root/.env` when `dotenv` is given."""
    package = root / "app"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "settings.py").write_text(textwrap.dedent(body))
    if dotenv is not None:
        (root / ".env").write_text("".join(dotenv_line(k, v) for k, v in dotenv.items()))
    return root


def probe(app: Path, env: Mapping[str, str], required: tuple[str, ...] = ()) -> ProbeReport:
    report = run_probe(sys.executable, app, env, CLASS, required, timeout=60)
    assert report.settings_class == CLASS or report.error is not None
    return report


def raw_probe(app: Path, env: Mapping[str, str], *extra: str) -> subprocess.CompletedProcess[bytes]:
    """The probe without run_probe, to look at its raw stdout/stderr bytes."""
    command = [sys.executable, "-B", str(SETTINGS_PROBE), "--settings", CLASS, *extra]
    return subprocess.run(command, cwd=app, env=dict(env), capture_output=True, timeout=60)


def assert_no_secret(blob: bytes | str, secret: str = PASSWORD) -> None:
    text = blob.decode("utf-8", "replace") if isinstance(blob, bytes) else blob
    for form in (secret, quote(secret, safe=""), json.dumps(secret)[1:-1]):
        assert form not in text


def test_each_source_is_reported(tmp_path: Path) -> None:
    app = make_app(
        tmp_path,
        """
        from pydantic_settings import BaseSettings, SettingsConfigDict

        class Settings(BaseSettings):
            model_config = SettingsConfigDict(env_file=".env", secrets_dir="secrets")
            from_dotenv: str = "d"
            from_env: str = "d"
            from_secret: str = "d"
            from_default: str = "fallback"
        """,
        dotenv={"FROM_DOTENV": "dotenv-value"},
    )
    (app / "secrets").mkdir()
    (app / "secrets" / "from_secret").write_text("secret-file-value\n")
    report = probe(app, hermetic_env(tmp_path, FROM_ENV="env-value"))

    assert report.ok, report.error
    got = {f.name: (f.source, f.source_detail, f.value) for f in report.fields}
    assert got["from_dotenv"] == ("dotenv", ".env: FROM_DOTENV", "dotenv-value")
    assert got["from_env"] == ("environment", "FROM_ENV", "env-value")
    assert got["from_secret"][0] == "secrets_dir"
    assert got["from_secret"][1].endswith("secrets/from_secret")
    assert got["from_default"] == ("default", "", "fallback")
    assert report.sources == ("init", "environment", "dotenv", "secrets_dir", "default")
    assert report.model_config is not None and report.model_config.env_file == ".env"
    assert report.model_config.secrets_dir == "secrets"
    assert [(d.path, d.exists, d.names) for d in report.dotenv] == [
        (".env", True, ("FROM_DOTENV",))
    ]
    assert {r["field"]: r["source"] for r in provenance_table(report)}["from_env"] == "environment"


INCIDENT_APP = """
    from pydantic_settings import BaseSettings, SettingsConfigDict

    class Settings(BaseSettings):
        model_config = SettingsConfigDict(extra="ignore")  # env_file=".env" was removed
        db_host: str = "localhost"
        db_user: str = "postgres"
        db_password: str = ""
        database_url: str = ""
"""


def test_env_file_incident_is_secret_missing(tmp_path: Path) -> None:
    url = f"postgresql://app:{quote(PASSWORD, safe='')}@127.0.0.1:5432/app"
    delivered = {
        "DB_HOST": "127.0.0.1",
        "DB_USER": "app",
        "DB_PASSWORD": PASSWORD,
        "DATABASE_URL": url,
    }
    app = make_app(tmp_path, INCIDENT_APP, dotenv=delivered)
    report = probe(app, hermetic_env(tmp_path), required=("db_host",))
    assert report.ok, report.error

    password = report.field("db_password")
    assert password is not None
    assert (password.source, password.empty, password.is_secret) == ("default", True, True)

    diagnosis = analyse(
        report,
        settings_class=CLASS,
        required=("db_host",),
        delivered=delivered,
        channel=DotenvDelivery(".env"),  # the strategy the workspace delivered with
        staging_hosts=LOCAL,
        redactor=Redactor([PASSWORD]),
    )
    assert diagnosis is not None
    assert diagnosis.failure_class is FailureClass.SETTINGS_SECRET_MISSING
    cause = diagnosis.cause
    assert cause.startswith(f"{CLASS}: field db_password (secret-like) resolved from its default")
    # Judged by delivery: the DSN carries credentials, so it comes right after the password.
    assert "The same holds for DATABASE_URL, DB_HOST, DB_USER." in cause
    assert any(
        line.startswith(
            "DATABASE_URL: delivered through the dotenv file .env; field database_url reads it "
            "but resolved from its default"
        )
        for line in diagnosis.evidence
    )
    assert "staging delivered DB_PASSWORD through the dotenv file .env" in cause
    assert "Settings.model_config has no env_file, so .env is never read" in cause
    assert 'env_file=".env"' in diagnosis.hint
    assert any(
        line.startswith("DB_HOST: delivered through the dotenv file .env; field db_host reads it")
        and "source=default value='localhost'" in line
        for line in diagnosis.evidence
    )
    assert_no_secret(json.dumps(diagnosis.to_dict()))


def test_env_file_present_passes(tmp_path: Path) -> None:
    body = INCIDENT_APP.replace('extra="ignore")', 'extra="ignore", env_file=".env")')
    url = f"postgresql://app:{quote(PASSWORD, safe='')}@127.0.0.1:5432/app"
    delivered = {
        "DB_HOST": "127.0.0.1",
        "DB_USER": "app",
        "DB_PASSWORD": PASSWORD,
        "DATABASE_URL": url,
    }
    app = make_app(tmp_path, body, dotenv=delivered)
    report = probe(app, hermetic_env(tmp_path), required=("db_user",))
    assert report.ok, report.error
    sources = {f.name: f.source for f in report.fields}
    assert set(sources.values()) == {"dotenv"}
    database_url = report.field("database_url")
    assert database_url is not None
    assert database_url.value == "postgresql://app:***@127.0.0.1:5432/app"
    assert (database_url.host, database_url.port) == ("127.0.0.1", 5432)
    diagnosis = analyse(
        report,
        settings_class=CLASS,
        required=("db_user",),
        delivered=delivered,
        channel="dotenv:.env",
        staging_hosts=LOCAL,
        redactor=Redactor([PASSWORD]),
    )
    assert diagnosis is None


def test_validation_error_names_the_field_never_the_input(tmp_path: Path) -> None:
    bad = "not-a-port-7f3kq"
    app = make_app(
        tmp_path,
        """
        from pydantic import field_validator
        from pydantic_settings import BaseSettings

        class Settings(BaseSettings):
            db_port: int
            db_password: str

            @field_validator("db_password")
            @classmethod
            def _loud(cls, value: str) -> str:
                raise ValueError(f"rejected {value}")  # a careless app echoes the input
        """,
    )
    env = hermetic_env(tmp_path, DB_PORT=bad, DB_PASSWORD=PASSWORD)
    raw = raw_probe(app, env)
    assert raw.returncode == 0
    assert bad not in (raw.stdout + raw.stderr).decode()
    assert_no_secret(raw.stdout + raw.stderr)

    report = ProbeReport.from_json(json.loads(raw.stdout))
    assert not report.ok and report.error is not None
    assert {e.loc for e in report.error.errors} == {"db_port", "db_password"}
    diagnosis = analyse(
        report,
        settings_class=CLASS,
        required=(),
        delivered={"DB_PORT": bad, "DB_PASSWORD": PASSWORD},
        channel="environ",
        staging_hosts=LOCAL,
        redactor=Redactor(),
    )
    assert diagnosis is not None
    assert diagnosis.failure_class is FailureClass.SETTINGS_LOAD_ERROR
    assert "db_port" in diagnosis.cause and "valid integer" in diagnosis.cause
    text = json.dumps(diagnosis.to_dict())
    assert bad not in text
    assert_no_secret(text)


def test_import_error_is_load_error(tmp_path: Path) -> None:
    app = make_app(tmp_path, "import not_installed_anywhere_42\n")
    report = probe(app, hermetic_env(tmp_path))
    assert not report.ok and report.error is not None
    assert report.error.type == "ModuleNotFoundError"
    assert "not_installed_anywhere_42" in report.error.traceback
    diagnosis = analyse(
        report,
        settings_class=CLASS,
        required=(),
        delivered={},
        channel="dotenv:.env",
        staging_hosts=LOCAL,
        redactor=Redactor(),
    )
    assert diagnosis is not None
    assert diagnosis.failure_class is FailureClass.SETTINGS_LOAD_ERROR
    assert "not_installed_anywhere_42" in diagnosis.cause
    assert CLASS in diagnosis.cause


def test_not_a_settings_class_is_load_error(tmp_path: Path) -> None:
    app = make_app(tmp_path, "class Settings:\n    pass\n")
    report = probe(app, hermetic_env(tmp_path))
    assert not report.ok and report.error is not None
    assert report.error.type == "TypeError"
    assert "BaseSettings" in report.error.message


def test_env_prefix_and_aliases(tmp_path: Path) -> None:
    app = make_app(
        tmp_path,
        """
        from pydantic import AliasChoices, Field
        from pydantic_settings import BaseSettings, SettingsConfigDict

        class Settings(BaseSettings):
            model_config = SettingsConfigDict(env_prefix="APP_", env_file=".env")
            db_host: str = "localhost"
            api_token: str = Field(default="", validation_alias="LEGACY_TOKEN")
            region: str = Field(default="eu", validation_alias=AliasChoices("REGION", "AWS_REGION"))
        """,
        dotenv={"LEGACY_TOKEN": "tok-from-dotenv"},
    )
    report = probe(app, hermetic_env(tmp_path, APP_DB_HOST="127.0.0.1", AWS_REGION="us-east-1"))
    assert report.ok, report.error
    host, token, region = (report.field(n) for n in ("db_host", "api_token", "region"))
    assert host is not None and token is not None and region is not None
    assert (host.source, host.source_detail, host.env_names) == (
        "environment",
        "APP_DB_HOST",
        ("app_db_host",),
    )
    assert (token.source, token.value, token.aliases) == ("dotenv", "***", ("LEGACY_TOKEN",))
    assert (region.source, region.source_detail, region.value) == (
        "environment",
        "AWS_REGION",
        "us-east-1",
    )
    assert set(region.env_names) == {"region", "aws_region"}


def test_prefix_mismatch_names_what_the_field_reads(tmp_path: Path) -> None:
    app = make_app(
        tmp_path,
        """
        from pydantic_settings import BaseSettings, SettingsConfigDict

        class Settings(BaseSettings):
            model_config = SettingsConfigDict(env_prefix="APP_")
            db_password: str = ""
        """,
    )
    env = hermetic_env(tmp_path, DB_PASSWORD=PASSWORD)
    report = probe(app, env)
    diagnosis = analyse(
        report,
        settings_class=CLASS,
        required=(),
        delivered={"DB_PASSWORD": PASSWORD},
        channel="environ",
        staging_hosts=LOCAL,
        redactor=Redactor(),
    )
    assert diagnosis is not None
    assert diagnosis.failure_class is FailureClass.SETTINGS_SECRET_MISSING
    assert "staging delivered DB_PASSWORD through environment variables" in diagnosis.cause
    assert "APP_DB_PASSWORD" in diagnosis.cause and "env_prefix='APP_'" in diagnosis.cause
    assert_no_secret(json.dumps(diagnosis.to_dict()))


def test_nested_delimiter(tmp_path: Path) -> None:
    app = make_app(
        tmp_path,
        """
        from pydantic import BaseModel
        from pydantic_settings import BaseSettings, SettingsConfigDict

        class Db(BaseModel):
            host: str = "localhost"
            password: str = ""

        class Settings(BaseSettings):
            model_config = SettingsConfigDict(env_file=".env", env_nested_delimiter="__")
            db: Db = Db()
        """,
        dotenv={"DB__PASSWORD": PASSWORD},
    )
    report = probe(app, hermetic_env(tmp_path, DB__HOST="127.0.0.1"))
    assert report.ok, report.error
    db, host, password = (report.field(n) for n in ("db", "db.host", "db.password"))
    assert db is not None and host is not None and password is not None
    assert password.source == "dotenv" and password.source_detail == ".env: DB__PASSWORD"
    assert password.is_secret and password.value == "***"
    assert (host.source, host.value, host.env_names) == ("environment", "127.0.0.1", ("db__host",))
    assert db.value is not None and json.loads(db.value) == {"host": "127.0.0.1", "password": "***"}
    delivered = {"DB__PASSWORD": PASSWORD, "DB__HOST": "127.0.0.1"}
    diagnosis = analyse(
        report,
        settings_class=CLASS,
        required=(),
        delivered=delivered,
        channel="dotenv:.env",
        staging_hosts=LOCAL,
        redactor=Redactor(),
    )
    assert diagnosis is None


def test_custom_sources_order_and_custom_source(tmp_path: Path) -> None:
    app = make_app(
        tmp_path,
        """
        from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

        class Vault(PydanticBaseSettingsSource):
            def get_field_value(self, field, field_name):
                return None, field_name, False

            def __call__(self):
                return {"api_key": "from-vault"}

        class Settings(BaseSettings):
            model_config = SettingsConfigDict(env_file=".env")
            region: str = "eu"
            api_key: str = ""

            @classmethod
            def settings_customise_sources(
                cls, settings_cls, init_settings, env_settings, dotenv_settings, **_others
            ):
                # dotenv outranks the environment here, and a vault comes first
                return (Vault(settings_cls), dotenv_settings, env_settings, init_settings)
        """,
        dotenv={"REGION": "from-dotenv", "API_KEY": "dotenv-key"},
    )
    report = probe(app, hermetic_env(tmp_path, REGION="from-env"))
    assert report.ok, report.error
    assert report.sources == ("Vault", "dotenv", "environment", "init", "default")
    region, key = report.field("region"), report.field("api_key")
    assert region is not None and key is not None
    assert (region.source, region.value) == ("dotenv", "from-dotenv")
    assert (key.source, key.value) == ("Vault", "***")


def test_customise_dropping_dotenv_is_explained(tmp_path: Path) -> None:
    app = make_app(
        tmp_path,
        """
        from pydantic_settings import BaseSettings, SettingsConfigDict

        class Settings(BaseSettings):
            model_config = SettingsConfigDict(env_file=".env")
            db_password: str = ""

            @classmethod
            def settings_customise_sources(
                cls, settings_cls, init_settings, env_settings, dotenv_settings, **_others
            ):
                return (env_settings, init_settings)  # env first, and no dotenv at all
        """,
        dotenv={"DB_PASSWORD": PASSWORD},
    )
    report = probe(app, hermetic_env(tmp_path))
    assert report.sources == ("environment", "init", "default")
    diagnosis = analyse(
        report,
        settings_class=CLASS,
        required=(),
        delivered={"DB_PASSWORD": PASSWORD},
        channel="dotenv:.env",
        staging_hosts=LOCAL,
        redactor=Redactor(),
    )
    assert diagnosis is not None
    assert diagnosis.failure_class is FailureClass.SETTINGS_SECRET_MISSING
    assert "settings_customise_sources does not return dotenv_settings" in diagnosis.cause


def test_webhook_default_is_egress(tmp_path: Path) -> None:
    token_path = "services/T0AAAA/B0BBBB/XyZsecretPath"
    app = make_app(
        tmp_path,
        f"""
        from pydantic_settings import BaseSettings, SettingsConfigDict

        class Settings(BaseSettings):
            model_config = SettingsConfigDict(env_file=".env")
            db_host: str = "localhost"
            slack_webhook_url: str = "https://hooks.slack.com/{token_path}"
        """,
        dotenv={"DB_HOST": "127.0.0.1"},
    )
    report = probe(app, hermetic_env(tmp_path))
    assert report.ok, report.error
    hook = report.field("slack_webhook_url")
    assert hook is not None and hook.host == "hooks.slack.com" and hook.source == "default"
    diagnosis = analyse(
        report,
        settings_class=CLASS,
        required=(),
        delivered={"DB_HOST": "127.0.0.1"},
        channel="dotenv:.env",
        staging_hosts=LOCAL,
        redactor=Redactor(),
    )
    assert diagnosis is not None
    assert diagnosis.failure_class is FailureClass.SETTINGS_EGRESS
    assert "slack_webhook_url" in diagnosis.cause and "hooks.slack.com" in diagnosis.cause
    assert "its default" in diagnosis.cause
    assert "SLACK_WEBHOOK_URL" in diagnosis.hint
    assert any(line.startswith("slack_webhook_url: source=default") for line in diagnosis.evidence)


def hostile_app(root: Path) -> tuple[Path, dict[str, str], dict[str, str]]:
    url = f"postgresql://app:{quote(PASSWORD, safe='')}@127.0.0.1:5432/app"
    raw_url = f"postgresql://app:{PASSWORD}@127.0.0.1:5432/app"  # unescaped, as careless apps do
    delivered = {"DB_PASSWORD": PASSWORD, "DATABASE_URL": url, "RAW_URL": raw_url}
    app = make_app(
        root,
        """
        import os
        print("app noise on stdout at import")
        os.write(1, b"raw fd-1 noise\\n")
        from pydantic import SecretStr
        from pydantic_settings import BaseSettings, SettingsConfigDict

        class Settings(BaseSettings):
            model_config = SettingsConfigDict(env_file=".env")
            db_password: SecretStr
            postgres_pass: str = ""
            database_url: str = ""
            raw_url: str = ""
        """,
        dotenv=delivered,
    )
    env = hermetic_env(root, POSTGRES_PASS=PASSWORD)
    return app, env, delivered | {"POSTGRES_PASS": PASSWORD}


def test_hostile_password_never_on_stdout_or_stderr(tmp_path: Path) -> None:
    app, env, _delivered = hostile_app(tmp_path)
    raw = raw_probe(app, env)
    assert raw.returncode == 0, raw.stderr
    assert_no_secret(raw.stdout + raw.stderr)
    assert b"app noise on stdout" in raw.stderr and b"raw fd-1 noise" in raw.stderr
    document = json.loads(raw.stdout)  # stdout is exactly the document
    assert document["ok"] is True
    values = {f["name"]: f["value"] for f in document["fields"]}
    assert values["db_password"] == "***" and values["postgres_pass"] == "***"
    assert values["database_url"] == "postgresql://app:***@127.0.0.1:5432/app"
    assert values["raw_url"] == "postgresql://app:***@127.0.0.1:5432/app"


def test_hostile_password_never_in_report_file_or_diagnosis(tmp_path: Path) -> None:
    app, env, delivered = hostile_app(tmp_path)
    out = tmp_path / "report.json"
    raw = raw_probe(app, env, "--out", str(out))
    assert raw.returncode == 0, raw.stderr
    assert raw.stdout == b""
    assert_no_secret(raw.stderr + out.read_bytes())
    report = ProbeReport.from_json(json.loads(out.read_text()))
    diagnosis = analyse(
        report,
        settings_class=CLASS,
        required=("database_url",),
        delivered=delivered,
        channel="dotenv:.env",
        staging_hosts=LOCAL,
        redactor=Redactor(),
    )
    assert diagnosis is None
    assert_no_secret(json.dumps(report.to_dict()))


def test_probe_does_not_import_staging(tmp_path: Path) -> None:
    app = make_app(
        tmp_path,
        """
        from pydantic_settings import BaseSettings

        class Settings(BaseSettings):
            name: str = "x"
        """,
    )
    # `staging` poisoned: any import of it in the probe raises ImportError.
    runner = (
        "import runpy, sys; sys.modules['staging'] = None; "
        f"sys.argv = [{str(SETTINGS_PROBE)!r}, '--settings', {CLASS!r}]; "
        f"runpy.run_path({str(SETTINGS_PROBE)!r}, run_name='__main__')"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", runner],
        cwd=app,
        env=hermetic_env(tmp_path),
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["ok"] is True, document["error"]
    assert [f["name"] for f in document["fields"]] == ["name"]


def test_probe_that_crashes_reports_stderr_tail(tmp_path: Path) -> None:
    app = make_app(
        tmp_path,
        """
        import os, sys
        sys.stderr.write("about to die hard\\n")
        sys.stderr.flush()
        os._exit(3)
        """,
    )
    report = probe(app, hermetic_env(tmp_path))
    assert not report.ok and report.error is not None
    assert report.error.type == "ProbeCrashed"
    assert "code 3" in report.error.message
    assert "about to die hard" in report.stderr_tail
    diagnosis = analyse(
        report,
        settings_class=CLASS,
        required=(),
        delivered={},
        channel="dotenv:.env",
        staging_hosts=LOCAL,
        redactor=Redactor(),
    )
    assert diagnosis is not None and diagnosis.failure_class is FailureClass.SETTINGS_LOAD_ERROR
    assert any("about to die hard" in line for line in diagnosis.evidence)


def processes_in(directory: Path) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if Path(os.readlink(proc / "cwd")) == directory:
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def test_hanging_import_times_out_and_leaves_no_process(tmp_path: Path) -> None:
    app = make_app(
        tmp_path,
        """
        import subprocess, sys, threading
        # a helper process the import leaves running, and an import that never finishes
        subprocess.Popen([sys.executable, "-c", "import threading; threading.Event().wait()"])
        threading.Event().wait()
        """,
    )
    report = run_probe(sys.executable, app, hermetic_env(tmp_path), CLASS, (), timeout=2)
    assert not report.ok and report.error is not None
    assert report.error.type == "ProbeTimeout"
    assert processes_in(app.resolve()) == []


def test_missing_interpreter(tmp_path: Path) -> None:
    report = run_probe(str(tmp_path / "no-python"), tmp_path, hermetic_env(tmp_path), CLASS, ())
    assert not report.ok and report.error is not None
    assert report.error.type == "ProbeNotStarted"


def test_secret_name_pattern_matches_staging_redact() -> None:
    spec = importlib.util.spec_from_file_location("settings_probe_under_test", SETTINGS_PROBE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.SECRET_NAME.pattern == SECRET_NAME.pattern
    assert module.SECRET_NAME.flags == SECRET_NAME.flags
