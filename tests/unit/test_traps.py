"""Known third-party traps get a plain-words cause (issue 12). Messages are the libraries'
own, produced by the real code where it is installed here (configparser, psycopg)."""

from __future__ import annotations

import configparser

import psycopg
import pytest

from staging.traps import find_trap


def _raised(fn: object) -> str:
    try:
        fn()  # type: ignore[operator]
    except Exception as exc:
        return f"{type(exc).__module__}.{type(exc).__name__}: {exc}"
    raise AssertionError("expected an exception")


def test_configparser_percent_as_alembic_set_main_option_hits_it() -> None:
    def set_main_option() -> None:
        # alembic's Config.set_main_option is file_config.set(section, name, value)
        parser = configparser.ConfigParser()
        parser.add_section("alembic")
        parser.set("alembic", "sqlalchemy.url", "postgresql://app:p%40ss@db/app")

    trap = find_trap(_raised(set_main_option))

    assert trap is not None and trap.name == "configparser-percent"
    assert "`%`" in trap.cause and "configparser" in trap.cause
    assert "%%" in trap.hint and "config.attributes" in trap.hint


def test_driver_scheme_handed_to_psycopg() -> None:
    message = _raised(lambda: psycopg.connect("postgresql+asyncpg://app:pw@127.0.0.1:1/db"))

    trap = find_trap(message)

    assert trap is not None and trap.name == "driver-scheme"
    assert "postgresql+asyncpg://" in trap.cause and "'+asyncpg'" in trap.hint


def test_libpq_url_with_unescaped_characters() -> None:
    message = _raised(lambda: psycopg.connect("postgresql://app:p@ss w/rd@127.0.0.1:1/db"))

    trap = find_trap(message)

    assert trap is not None and trap.name == "libpq-url"
    assert "quote(value, safe='')" in trap.hint


def test_sqlalchemy_url_rendered_with_hidden_password() -> None:
    output = (
        "Traceback (most recent call last):\n"
        '  File "/ws/app/migrations/env.py", line 20, in run_migrations_online\n'
        "    engine = create_engine(str(engine_url))\n"
        "psycopg.OperationalError: connection failed: FATAL:  password authentication failed "
        'for user "app"\n'
    )

    trap = find_trap(output)

    assert trap is not None and trap.name == "sqlalchemy-hidden-password"
    assert "hide_password=False" in trap.hint


@pytest.mark.parametrize(
    "text",
    [
        "",
        'psycopg.OperationalError: FATAL:  password authentication failed for user "app"',
        "ValueError: 100% done",
    ],
)
def test_ordinary_failures_are_no_trap(text: str) -> None:
    assert find_trap(text) is None
