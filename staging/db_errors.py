"""What Postgres and its drivers say when the app's credentials or DSN are wrong.

Free of temporalio on purpose: the run's redactor uses `scrub_dsn_fragments` from its
first line of output, long before anything needs the Temporal SDK.
"""

from __future__ import annotations

import re

_DB_AUTH = re.compile(r"password authentication failed", re.IGNORECASE)

# libpq/psycopg parse errors a DSN built with raw `f"...:{password}@..."` produces. Each
# names the quoted fragment of the URL it choked on (group "frag").
_DSN_ERRORS = (
    re.compile(r'invalid percent-encoded token: "(?P<frag>[^\n]*)"'),
    re.compile(r'unexpected spaces found in "(?P<frag>[^\n]*)", use percent-encoded'),
    re.compile(r'invalid integer value "(?P<frag>[^\n]*)" for connection option "port"'),
    re.compile(r'invalid port number: "(?P<frag>[^\n]*)"'),
    re.compile(r'invalid URI query parameter: "(?P<frag>[^\n]*)"'),
    re.compile(r"invalid dsn: (?P<frag>[^\n]*)"),
    re.compile(r"Could not parse SQLAlchemy URL from string '(?P<frag>[^\n]*)'"),
)
# A host name only says "escaping" when it holds characters no host name has: the
# remainder of a password that contained `@` or `/`.
_BAD_HOST = re.compile(r'could not translate host name "(?P<frag>[^"\n]*[@:/%# \'][^"\n]*)"')

DSN_ESCAPING = (
    "the DSN was built without escaping: the password's special characters broke the URL"
    " (percent-escape user and password with urllib.parse.quote(value, safe=''), or pass"
    " them to the driver as separate keyword arguments)"
)


def is_db_auth_failure(text: str) -> bool:
    """Postgres rejected the credentials (`password authentication failed`) anywhere."""
    return bool(_DB_AUTH.search(text))


def mentions_dsn_escaping(text: str) -> str | None:
    """A human explanation when the evidence shows a URL broken by an unescaped password."""
    if any(p.search(text) for p in (*_DSN_ERRORS, _BAD_HOST)):
        return DSN_ESCAPING
    return None


def scrub_dsn_fragments(text: str) -> str:
    """Mask the URL fragments libpq quotes back: they hold pieces of the password, which a
    whole-secret redactor cannot recognise."""
    for pattern in (*_DSN_ERRORS, _BAD_HOST):
        text = pattern.sub(lambda m: m.group(0).replace(m.group("frag"), "***"), text)
    return text
