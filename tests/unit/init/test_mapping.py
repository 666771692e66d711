"""Each kind of settings field gets the right placeholder (or none)."""

from __future__ import annotations

import re

import pytest

from staging.init.mapping import capture_name, map_field
from staging.init.settings_scan import SettingsField


def field(*path: str, annotation: str = "str", default: object = "") -> SettingsField:
    return SettingsField(path, "_".join(path).upper(), annotation, default, True)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (("db_host",), "{postgres.host}"),
        (("db_port",), "{postgres.port}"),
        (("db_user",), "{postgres.user}"),
        (("db_password",), "{postgres.password}"),
        (("db_name",), "{postgres.database}"),
        (("postgres_db",), "{postgres.database}"),
        (("pg_database",), "{postgres.database}"),
        (("database_url",), "{postgres.url}"),
        (("dsn",), "{postgres.url}"),
        (("db_dsn",), "{postgres.url}"),
        (("database", "password"), "{postgres.password}"),
        (("temporal_address",), "{temporal.address}"),
        (("temporal_target",), "{temporal.address}"),
        (("temporal", "namespace"), "{temporal.namespace}"),
        (("namespace",), "{temporal.namespace}"),
        (("slack_webhook_url",), "{capture.slack}"),
        (("alerts", "webhook_url"), "{capture.alerts}"),
        (("partner_api_url",), "{capture.partner_api}"),
        (("task_queue",), None),
        (("temporal_task_queue",), None),
        (("redis_url",), None),
        (("log_level",), None),
    ],
)
def test_placeholder_by_name(path: tuple[str, ...], expected: str | None) -> None:
    assert map_field(field(*path)).placeholder == expected


def test_a_temporal_host_with_a_port_in_its_default_is_the_address() -> None:
    assert map_field(field("temporal_host", default="localhost:7233")).placeholder == (
        "{temporal.address}"
    )
    assert map_field(field("temporal_host", default="localhost")).placeholder == ("{temporal.host}")


def test_postgres_dsn_type_wins_over_the_name() -> None:
    assert map_field(field("primary", annotation="PostgresDsn")).placeholder == "{postgres.url}"


@pytest.mark.parametrize("path", [("Teams.Hook-URL",), ("hook",), ("notify", "url")])
def test_capture_names_are_valid_sink_names(path: tuple[str, ...]) -> None:
    assert re.fullmatch(r"[A-Za-z0-9_-]+", capture_name(field(*path)))
