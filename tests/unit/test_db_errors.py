"""What Postgres and libpq say about wrong credentials and unescaped DSNs."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from staging.db_errors import (
    DSN_ESCAPING,
    is_db_auth_failure,
    mentions_dsn_escaping,
    scrub_dsn_fragments,
)
from staging.redact import Redactor

AUTH = 'connection failed: FATAL:  password authentication failed for user "app"'
PASSWORD = "p@ss:w/rd% #'\" x"


def test_is_db_auth_failure() -> None:
    assert is_db_auth_failure(f"psycopg.OperationalError: {AUTH}")
    assert is_db_auth_failure("FATAL: PASSWORD AUTHENTICATION FAILED for user")
    assert not is_db_auth_failure('FATAL: database "app" does not exist')


def libpq_error(url: str) -> str:
    with pytest.raises(psycopg.ProgrammingError) as info:
        conninfo_to_dict(url)
    return str(info.value)


@pytest.mark.parametrize(
    "password", [PASSWORD, "ab%zz", "a b"], ids=["generated", "bad-percent", "space"]
)
def test_real_libpq_errors_of_an_unescaped_dsn_mention_escaping(password: str) -> None:
    error = libpq_error(f"postgresql://app:{password}@127.0.0.1:5432/app")

    assert mentions_dsn_escaping(error) == DSN_ESCAPING


def test_host_name_errors_mention_escaping_only_for_url_debris() -> None:
    debris = 'could not translate host name "y@127.0.0.1" to address: Name or service not known'
    real = 'could not translate host name "db.internal" to address: Name or service not known'

    assert mentions_dsn_escaping(debris) == DSN_ESCAPING
    assert mentions_dsn_escaping(real) is None
    assert mentions_dsn_escaping(AUTH) is None


def test_scrub_masks_password_fragments_the_redactor_cannot_see() -> None:
    error = libpq_error(f"postgresql://app:{PASSWORD}@127.0.0.1:5432/app")
    assert "rd% #" in error  # libpq quotes the rest of the password back

    scrubbed = Redactor([PASSWORD]).text(scrub_dsn_fragments(error))

    assert "rd% #" not in scrubbed
    assert "invalid percent-encoded token" in scrubbed
