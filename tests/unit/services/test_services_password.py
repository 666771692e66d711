from __future__ import annotations

from urllib.parse import unquote, urlsplit

import pytest
from psycopg.conninfo import conninfo_to_dict

from staging.redact import Redactor
from staging.services.base import PostgresEndpoint
from staging.services.password import HOSTILE, generate_password


@pytest.mark.parametrize("attempt", range(20))
def test_every_password_carries_every_hostile_character(attempt: int) -> None:
    password = generate_password()
    assert len(password) == 24
    for char in "@:/%#'\" ":
        assert char in password
    assert any(c.isalpha() for c in password)
    assert any(c.isdigit() for c in password)
    # Edge characters are plain so no tool strips or unquotes them.
    assert password[0].isalnum() and password[-1].isalnum()


def test_passwords_differ_per_call() -> None:
    assert len({generate_password() for _ in range(50)}) == 50


def test_too_short_is_refused() -> None:
    with pytest.raises(ValueError):
        generate_password(len(HOSTILE))


def _endpoint(password: str) -> PostgresEndpoint:
    return PostgresEndpoint("127.0.0.1", 54321, "app user@x", password, "app/db")


@pytest.mark.parametrize("attempt", range(10))
def test_url_escaping_round_trips_through_urlsplit(attempt: int) -> None:
    password = generate_password()
    url = _endpoint(password).url
    parts = urlsplit(url)
    assert parts.scheme == "postgresql"
    assert parts.hostname == "127.0.0.1" and parts.port == 54321
    assert unquote(parts.password or "") == password
    assert unquote(parts.username or "") == "app user@x"
    assert unquote(parts.path[1:]) == "app/db"


@pytest.mark.parametrize("attempt", range(10))
def test_libpq_parses_the_url_back_to_the_fields(attempt: int) -> None:
    password = generate_password()
    parsed = conninfo_to_dict(_endpoint(password).url)
    assert parsed["password"] == password
    assert parsed["user"] == "app user@x"
    assert parsed["dbname"] == "app/db"
    assert str(parsed["port"]) == "54321"


def test_repr_and_redaction_hide_the_password() -> None:
    password = generate_password()
    endpoint = _endpoint(password)
    assert password not in repr(endpoint)
    assert password not in Redactor([password])(f"url={endpoint.url} raw={password}")
