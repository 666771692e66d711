"""`staging.preflight.analyse` on hand-built probe reports: wording, priority, redaction."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from staging.preflight import (
    DotenvReport,
    FieldError,
    FieldReport,
    ModelConfigReport,
    ProbeError,
    ProbeReport,
    analyse,
    credentials_phrase,
    describe_channel,
    provenance_table,
)
from staging.redact import Redactor
from staging.result import Diagnosis, FailureClass
from staging.workspace.delivery import (
    DeliveryStrategy,
    DotenvDelivery,
    EnvironDelivery,
    SecretsDirDelivery,
)

CLASS = "everflow.settings:Settings"
SECRET = "hunter2-@:/%#'\" x"
DEFAULT_SOURCES = ("init", "environment", "dotenv", "secrets_dir", "default")


def fld(name: str, source: str = "dotenv", value: str | None = "v", **kw: Any) -> FieldReport:
    secret = kw.pop("is_secret", "password" in name)
    empty = kw.pop("empty", value in ("", None))
    env_names = kw.pop("env_names", (name,))
    return FieldReport(
        name=name,
        annotation="str",
        is_secret=secret,
        required=kw.pop("required", False),
        value=("***" if secret and value else value),
        empty=empty,
        source=source,
        env_names=env_names,
        **kw,
    )


def rep(
    *fields: FieldReport, sources: Sequence[str] = DEFAULT_SOURCES, **config: Any
) -> ProbeReport:
    model_config = ModelConfigReport(**({"env_file": ".env"} | config))
    return ProbeReport(
        ok=True,
        error=None,
        model_config=model_config,
        fields=list(fields),
        dotenv=[DotenvReport(".env", True, ("DB_PASSWORD",))],
        settings_class=CLASS,
        sources=tuple(sources),
    )


def run(
    report: ProbeReport,
    delivered: Mapping[str, str],
    *,
    channel: DeliveryStrategy | str = "dotenv:.env",
    required: Sequence[str] = (),
    hosts: Sequence[str] = ("127.0.0.1",),
) -> Diagnosis | None:
    return analyse(
        report,
        settings_class=CLASS,
        required=required,
        delivered=delivered,
        channel=channel,
        staging_hosts=hosts,
        redactor=Redactor(),
    )


def must(diagnosis: Diagnosis | None, kind: FailureClass) -> Diagnosis:
    assert diagnosis is not None
    assert diagnosis.failure_class is kind, diagnosis
    assert SECRET not in json.dumps(diagnosis.to_dict())
    return diagnosis


def test_channels_are_strategies() -> None:
    assert DotenvDelivery(".env").phrase == "the dotenv file .env"
    assert EnvironDelivery().phrase == "environment variables"
    assert SecretsDirDelivery("run/secrets").phrase == "the secrets dir run/secrets"
    assert describe_channel("dotenv", "config/.env") == DotenvDelivery("config/.env")
    assert describe_channel("environ", ".env") == EnvironDelivery()
    assert describe_channel("secrets_dir", "s") == SecretsDirDelivery("s")


def test_the_display_string_is_never_parsed() -> None:
    """The phase hands over the strategy; its wording may change without changing verdicts."""
    report = rep(fld("db_password", "default", ""), env_file=None)

    class Reworded(DotenvDelivery):
        def describe(self, count: int) -> str:
            return f"{count} values, written to a file somewhere"

    strategy: DeliveryStrategy = Reworded("config/app.env")
    d = must(
        run(report, {"DB_PASSWORD": SECRET}, channel=strategy), FailureClass.SETTINGS_SECRET_MISSING
    )
    assert "no env_file, so config/app.env is never read" in d.cause


def test_all_good_is_none() -> None:
    report = rep(fld("db_password"), fld("db_host", value="127.0.0.1", host="127.0.0.1"))
    assert run(report, {"DB_PASSWORD": SECRET, "DB_HOST": "127.0.0.1"}) is None


def test_no_env_file() -> None:
    report = rep(fld("db_password", "default", ""), env_file=None)
    d = must(run(report, {"DB_PASSWORD": SECRET}), FailureClass.SETTINGS_SECRET_MISSING)
    assert "field db_password (secret-like) resolved from its default (empty)" in d.cause
    assert "staging delivered DB_PASSWORD through the dotenv file .env" in d.cause
    assert "Settings.model_config has no env_file, so .env is never read" in d.cause
    assert d.hint.startswith('restore env_file=".env" in Settings.model_config')


def test_env_file_elsewhere() -> None:
    report = rep(fld("db_password", "default", ""), env_file="config/.env")
    d = must(run(report, {"DB_PASSWORD": SECRET}), FailureClass.SETTINGS_SECRET_MISSING)
    assert "env_file='config/.env' does not include .env" in d.cause
    assert 'path = "config/.env"' in d.hint


def test_env_file_list_including_the_path_is_fine_for_the_config() -> None:
    report = rep(fld("db_password", "default", ""), env_file=[".env.defaults", "./.env"])
    d = must(run(report, {"DB_PASSWORD": SECRET}), FailureClass.SETTINGS_SECRET_MISSING)
    assert "does not include" not in d.cause
    assert "yet field db_password did not take it" in d.cause


def test_empty_higher_priority_source() -> None:
    report = rep(fld("db_password", "environment", "", source_detail="DB_PASSWORD"))
    d = must(run(report, {"DB_PASSWORD": SECRET}), FailureClass.SETTINGS_SECRET_MISSING)
    assert "the environment source (DB_PASSWORD) supplies an empty value" in d.cause


def test_delivered_empty() -> None:
    report = rep(fld("db_password", "dotenv", ""))
    d = must(run(report, {"DB_PASSWORD": ""}), FailureClass.SETTINGS_SECRET_MISSING)
    assert "but with an empty value" in d.cause


def test_secrets_dir_not_configured() -> None:
    report = rep(fld("api_token", "default", "", is_secret=True))
    d = must(
        run(report, {"API_TOKEN": SECRET}, channel="secrets_dir:secrets"),
        FailureClass.SETTINGS_SECRET_MISSING,
    )
    assert "has no secrets_dir, so secrets is never read" in d.cause
    assert 'secrets_dir="secrets"' in d.hint


def test_environ_not_read_by_customised_sources() -> None:
    report = rep(fld("db_password", "default", ""), sources=("init", "dotenv", "default"))
    d = must(
        run(report, {"DB_PASSWORD": SECRET}, channel="environ"),
        FailureClass.SETTINGS_SECRET_MISSING,
    )
    assert "does not return env_settings, so environment variables are never read" in d.cause


def test_case_sensitive_names() -> None:
    field = fld("db_password", "default", "", env_names=("DB_PASSWORD",))
    report = rep(field, case_sensitive=True)
    d = must(
        run(report, {"db_password": SECRET}, channel="environ"),
        FailureClass.SETTINGS_SECRET_MISSING,
    )
    assert "staging delivered db_password" in d.cause and "reads DB_PASSWORD" in d.cause


def test_not_delivered_at_all() -> None:
    report = rep(fld("db_password", "default", ""))
    d = must(run(report, {}), FailureClass.SETTINGS_SECRET_MISSING)
    assert "staging delivers nothing for it" in d.cause
    assert 'add DB_PASSWORD = "..." to [tool.staging.env]' in d.hint


def test_required_field_from_default() -> None:
    report = rep(
        fld("region", "default", "eu-west-1", env_names=("app_region",)), env_prefix="APP_"
    )
    assert run(report, {}) is None
    d = must(run(report, {}, required=["APP_REGION"]), FailureClass.SETTINGS_SECRET_MISSING)
    assert "field region (required) resolved from its default ('eu-west-1')" in d.cause


def test_unknown_required_name_is_config_invalid() -> None:
    report = rep(fld("db_password"))
    d = must(
        run(report, {"DB_PASSWORD": SECRET}, required=["db_pasword"]), FailureClass.CONFIG_INVALID
    )
    assert "db_pasword" in d.cause and "db_password" in d.hint


def test_nested_field_of_unset_parent_is_ignored() -> None:
    parent = fld("db", "default", None)
    child = fld("db.password", "default", "", env_names=())
    assert run(rep(parent, child), {}) is None
    set_parent = fld("db", "default", '{"password": ""}')
    must(run(rep(set_parent, child), {}), FailureClass.SETTINGS_SECRET_MISSING)


def test_nested_delivery_maps_by_delimiter() -> None:
    child = fld("db.password", "default", "", env_names=("db__password",))
    report = rep(fld("db", "default", "{}"), child, env_file=None, env_nested_delimiter="__")
    d = must(run(report, {"DB__PASSWORD": SECRET}), FailureClass.SETTINGS_SECRET_MISSING)
    assert "staging delivered DB__PASSWORD" in d.cause


@pytest.mark.parametrize(
    ("host", "outside"),
    [
        ("127.0.0.1", False),
        ("localhost", False),
        ("::1", False),
        ("0.0.0.0", False),
        ("capture.localhost", False),
        ("postgres-run42", False),  # a staging service host
        ("10.0.0.5", True),
        ("prod-db.internal", True),
        ("hooks.slack.com", True),
    ],
)
def test_egress_hosts(host: str, outside: bool) -> None:
    report = rep(fld("notify_url", "dotenv", f"http://{host}/x", host=host))
    d = run(report, {"NOTIFY_URL": "x"}, hosts=("127.0.0.1", "postgres-run42"))
    if outside:
        assert must(d, FailureClass.SETTINGS_EGRESS)
        assert host in d.cause  # type: ignore[union-attr]
    else:
        assert d is None


def test_egress_of_a_secret_shows_only_the_host() -> None:
    field = fld("database_dsn", "default", "x", is_secret=True, host="prod-db", port=5432)
    d = must(run(rep(field), {}), FailureClass.SETTINGS_EGRESS)
    assert "prod-db:5432" in d.cause and "***" not in d.cause


def test_empty_values_are_not_egress() -> None:
    report = rep(fld("notify_url", "default", "", host=None))
    assert run(report, {}) is None


def test_lost_delivery_outranks_egress_which_outranks_undelivered() -> None:
    hook = fld("slack_url", "default", "https://hooks.slack.com/x", host="hooks.slack.com")
    lost = fld("db_password", "default", "")
    undelivered = fld("api_token", "default", "", is_secret=True)
    d = must(
        run(rep(lost, hook, undelivered, env_file=None), {"DB_PASSWORD": SECRET}),
        FailureClass.SETTINGS_SECRET_MISSING,
    )
    assert "db_password" in d.cause
    assert any("slack_url" in line and "hooks.slack.com" in line for line in d.evidence)
    d = must(run(rep(hook, undelivered), {}), FailureClass.SETTINGS_EGRESS)
    assert "slack_url" in d.cause


def test_load_error_validation() -> None:
    error = ProbeError(
        "ValidationError",
        "2 validation error(s) for Settings",
        (
            FieldError("db_port", "Input should be a valid integer", "int_parsing"),
            FieldError("db_password", "Field required", "missing"),
        ),
    )
    report = ProbeReport(
        False, error, ModelConfigReport(), [fld("db_port", "environment", None)], [], CLASS
    )
    d = must(run(report, {"DB_PORT": "x"}, channel="environ"), FailureClass.SETTINGS_LOAD_ERROR)
    assert "failed to validate (db_port, db_password)" in d.cause
    assert "db_port: Input should be a valid integer [int_parsing]" in d.evidence
    assert "DB_PORT" in d.hint


def test_load_error_missing_field_explains_the_channel() -> None:
    error = ProbeError(
        "ValidationError",
        "1 validation error(s)",
        (FieldError("db_password", "Field required", "missing"),),
    )
    field = fld("db_password", "default", None, required=True)
    report = ProbeReport(
        False, error, ModelConfigReport(), [field], [], CLASS, sources=DEFAULT_SOURCES
    )
    d = must(run(report, {"DB_PASSWORD": SECRET}), FailureClass.SETTINGS_LOAD_ERROR)
    assert 'restore env_file=".env"' in d.hint


def test_load_error_extra_forbidden() -> None:
    error = ProbeError(
        "ValidationError",
        "1 validation error(s)",
        (FieldError("slack_url", "Extra inputs are not permitted", "extra_forbidden"),),
    )
    report = ProbeReport(False, error, ModelConfigReport(extra="forbid"), [], [], CLASS)
    d = must(run(report, {"SLACK_URL": "x"}), FailureClass.SETTINGS_LOAD_ERROR)
    assert "extra='ignore'" in d.hint and "(SLACK_URL)" in d.hint  # the delivered name


def test_load_error_import_and_crash() -> None:
    trace = "Traceback (most recent call last):\n  File x\nModuleNotFoundError: No module named 'x'"
    report = ProbeReport(
        False, ProbeError("ModuleNotFoundError", "No module named 'x'", (), trace), None
    )
    d = must(run(report, {}), FailureClass.SETTINGS_LOAD_ERROR)
    assert "could not be loaded: ModuleNotFoundError" in d.cause
    assert d.evidence[-1].endswith("No module named 'x'")
    crashed = ProbeReport.failed(CLASS, "ProbeCrashed", "exited with code 3", f"boom {SECRET}")
    diagnosis = analyse(
        crashed,
        settings_class=CLASS,
        required=(),
        delivered={"DB_PASSWORD": SECRET},
        channel="environ",
        staging_hosts=(),
        redactor=Redactor(),
    )
    d = must(diagnosis, FailureClass.SETTINGS_LOAD_ERROR)
    assert "boom ***" in d.evidence


def test_diagnosis_is_redacted_even_if_the_report_leaks() -> None:
    leaky = FieldReport("db_host", "str", False, False, f"db-{SECRET}", False, "default", host="db")
    report = rep(leaky)
    diagnosis = analyse(
        report,
        settings_class=CLASS,
        required=(),
        delivered={},
        channel="environ",
        staging_hosts=(),
        redactor=Redactor([SECRET]),
    )
    d = must(diagnosis, FailureClass.SETTINGS_EGRESS)
    assert "db-***" in d.cause


def test_from_json_tolerates_unknown_and_missing_keys() -> None:
    data = {
        "ok": True,
        "model_config": {"env_file": [".env", ".env.local"], "future_key": 1},
        "fields": [
            {
                "name": "a",
                "annotation": "str",
                "is_secret": False,
                "required": False,
                "value": "1",
                "empty": False,
                "source": "init",
                "aliases": ["A"],
                "env_names": ["a"],
                "new": 2,
            }
        ],
        "sources": ["init"],
    }
    report = ProbeReport.from_json(data)
    assert report.model_config is not None and report.model_config.env_files == [
        ".env",
        ".env.local",
    ]
    assert report.fields[0].aliases == ("A",)
    assert report.dotenv == [] and report.error is None


def test_provenance_table() -> None:
    report = rep(fld("db_password"), fld("name", "default", ""), fld("opt", "default", None))
    assert provenance_table(report) == [
        {"field": "db_password", "source": "dotenv", "value": "***", "secret": "yes", "detail": ""},
        {"field": "name", "source": "default", "value": "(empty)", "secret": "no", "detail": ""},
        {"field": "opt", "source": "default", "value": "None", "secret": "no", "detail": ""},
    ]


HOOK = "https://hooks.slack.com/services/T0/B0/x"


def test_egress_hint_for_an_undelivered_field_names_its_variable() -> None:
    field = fld("slack_url", "default", HOOK, host="hooks.slack.com", env_names=("app_slack_url",))
    d = must(run(rep(field, env_prefix="APP_"), {}), FailureClass.SETTINGS_EGRESS)
    assert d.hint.startswith("deliver a staging value for APP_SLACK_URL in [tool.staging.env]")


def test_egress_hint_never_asks_to_deliver_a_delivered_variable() -> None:
    # A custom source of the app outranks the dotenv file staging wrote.
    overridden = fld("slack_url", "yaml", HOOK, host="hooks.slack.com")
    d = must(
        run(rep(overridden), {"SLACK_URL": "http://127.0.0.1:9/c"}), FailureClass.SETTINGS_EGRESS
    )
    assert (
        "staging delivered SLACK_URL through the dotenv file .env, but the yaml source" in d.cause
    )
    assert "deliver a staging value" not in d.hint and "yaml source" in d.hint
    # [tool.staging.env] itself hands the app a production address.
    literal = fld("slack_url", "dotenv", HOOK, host="hooks.slack.com")
    d = must(run(rep(literal), {"SLACK_URL": HOOK}), FailureClass.SETTINGS_EGRESS)
    assert "the value is the one staging delivered for SLACK_URL" in d.cause
    assert d.hint.startswith("render SLACK_URL in [tool.staging.env] from a staging value")


def test_egress_caused_by_a_lost_delivery_is_judged_as_the_lost_delivery() -> None:
    # env_file removed: the default points at production; the cause is the lost variable.
    field = fld("slack_url", "default", HOOK, host="hooks.slack.com")
    d = must(run(rep(field, env_file=None), {"SLACK_URL": "x"}), FailureClass.SETTINGS_IGNORED)
    assert "staging delivered SLACK_URL through the dotenv file .env" in d.cause
    assert "has no env_file" in d.cause
    assert any("points at hooks.slack.com" in line for line in d.evidence)


def test_optional_by_type_is_not_missing() -> None:
    base = fld("openai_api_key", "default", None, is_secret=True, default="None")
    key = FieldReport(**{**base.__dict__, "annotation": "SecretStr | None"})
    assert run(rep(key), {}) is None
    required = run(rep(key), {}, required=["openai_api_key"])
    must(required, FailureClass.SETTINGS_SECRET_MISSING)


def test_credentials_phrase_uses_the_apps_own_names() -> None:
    """For db.auth_failed hints: never DB_PASSWORD for an app that reads DATABASE_URL."""
    dsn = rep(fld("database_url", "dotenv", "postgresql://app:***@db:5432/app"))
    delivered = {"DATABASE_URL": "postgresql://app:pw%40x@db:5432/app", "TASK_QUEUE": "q"}
    assert credentials_phrase(dsn, delivered) == (
        "how Settings reads DATABASE_URL (field database_url)"
    )
    parts = rep(fld("db_password"), fld("db_host", value="db"))
    assert credentials_phrase(parts, {"DB_HOST": "db", "DB_PASSWORD": SECRET}) == (
        "how Settings reads DB_PASSWORD (field db_password)"
    )
    generic = credentials_phrase(None, {"DB_PASSWORD": SECRET})
    assert "DB_PASSWORD" not in generic and SECRET not in generic
