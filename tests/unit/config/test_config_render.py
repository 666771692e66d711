"""Placeholder rendering: every placeholder, brace escapes, unknown names, URL escaping."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

import pytest
from psycopg.conninfo import conninfo_to_dict

from staging.config.render import (
    STATIC_NAMES,
    capture_names,
    placeholder_values,
    render_env,
    validate_templates,
)
from staging.errors import ConfigError
from staging.services.base import PostgresEndpoint, TemporalEndpoint

HOSTILE = "p@ss:w/o%rd#1'\" x\\y$z{a}"
PG = PostgresEndpoint(host="127.0.0.1", port=54321, user="app", password=HOSTILE, database="app")
TEMPORAL = TemporalEndpoint(host="127.0.0.1", port=7233, namespace="staging-run")
VALUES = placeholder_values(PG, TEMPORAL, {"slack": "http://127.0.0.1:9999/slack"})
SOURCE = "/proj/pyproject.toml"


def test_every_placeholder_renders() -> None:
    templates = {f"V{i}": "{" + name + "}" for i, name in enumerate(STATIC_NAMES)}
    templates["SLACK"] = "{capture.slack}"
    out = render_env(templates, VALUES, source=SOURCE)
    assert out == {
        **{f"V{i}": VALUES[name] for i, name in enumerate(STATIC_NAMES)},
        "SLACK": "http://127.0.0.1:9999/slack",
    }
    assert VALUES["temporal.address"] == "127.0.0.1:7233"
    assert VALUES["postgres.port"] == "54321"
    assert VALUES["temporal.namespace"] == "staging-run"


def test_mixed_text_and_brace_escapes() -> None:
    out = render_env(
        {"A": "host={postgres.host} port={postgres.port}", "B": "{{literal}} {{{postgres.user}}}"},
        VALUES,
        source=SOURCE,
    )
    assert out == {"A": "host=127.0.0.1 port=54321", "B": "{literal} {app}"}


def test_values_are_not_re_rendered() -> None:
    # The password contains braces; it must come out verbatim, not be parsed again.
    assert render_env({"P": "{postgres.password}"}, VALUES, source=SOURCE) == {"P": HOSTILE}


def test_unknown_placeholder_names_variable_file_and_known_names() -> None:
    with pytest.raises(ConfigError) as info:
        render_env({"DB_HOST": "{postgres.hots}"}, VALUES, source=SOURCE)
    text = str(info.value)
    for needle in (
        "DB_HOST",
        "{postgres.hots}",
        SOURCE,
        "{postgres.host}",
        "did you mean",
        "Hint:",
    ):
        assert needle in text


def test_capture_not_started_is_unknown_at_render_time() -> None:
    with pytest.raises(ConfigError, match=r"\{capture\.email\}"):
        render_env({"MAIL": "{capture.email}"}, VALUES, source=SOURCE)


@pytest.mark.parametrize("template", ["{postgres.host", "x}", "{}", "{a{b}"])
def test_unbalanced_braces(template: str) -> None:
    with pytest.raises(ConfigError, match="X") as info:
        render_env({"X": template}, VALUES, source=SOURCE)
    assert "{{" in str(info.value)


def test_capture_names_are_distinct_and_sorted() -> None:
    templates = {
        "A": "{capture.slack}",
        "B": "{capture.email}/hook?x={capture.slack}",
        "C": "{postgres.host} {{capture.literal}}",
    }
    assert capture_names(templates) == ["email", "slack"]


def test_validate_templates_before_services_exist() -> None:
    validate_templates({"A": "{postgres.url}", "B": "{capture.any-name_1}"}, source=SOURCE)
    with pytest.raises(ConfigError, match=r"capture\.<NAME>"):
        validate_templates({"A": "{capture.}"}, source=SOURCE)
    with pytest.raises(ConfigError, match=re.escape("did you mean {temporal.address}")):
        validate_templates({"A": "{temporal.adress}"}, source=SOURCE)


def test_url_round_trips_a_hostile_password() -> None:
    url = render_env({"DATABASE_URL": "{postgres.url}"}, VALUES, source=SOURCE)["DATABASE_URL"]
    parts = urlsplit(url)
    assert unquote(parts.password or "") == HOSTILE
    assert parts.hostname == "127.0.0.1"
    assert parts.port == 54321
    assert parts.path == "/app"
    parsed = conninfo_to_dict(url)  # libpq's own parser, as the app's driver uses it
    assert parsed["password"] == HOSTILE
    assert parsed["user"] == "app"
    assert parsed["dbname"] == "app"


def test_process_env_errors_name_their_table() -> None:
    with pytest.raises(ConfigError, match=re.escape("tool.staging.process_env.MODE in")):
        validate_templates({"MODE": "{postgres.hots}"}, source=SOURCE, table="process_env")
    with pytest.raises(ConfigError, match=re.escape("tool.staging.process_env.MODE in")):
        render_env({"MODE": "x}"}, VALUES, source=SOURCE, table="process_env")


def test_capture_names_across_tables() -> None:
    names = capture_names({"A": "{capture.slack}"}, {"B": "{capture.audit}{capture.slack}"})
    assert names == ["audit", "slack"]
