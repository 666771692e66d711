"""Known third-party traps, explained in plain words.

Some failures are a library doing exactly what it documents, in a way nobody expects:
configparser reading `%` as interpolation, libpq splitting a URL at an unescaped `@`, a
SQLAlchemy driver suffix handed to the raw driver, SQLAlchemy writing `***` where the
password was. The exception line alone sends a developer looking in the wrong place, so
each trap names the real cause and the narrowest fix. Pure text matching over the
(redacted) output; free of temporalio like `db_errors`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from staging.db_errors import is_db_auth_failure, mentions_dsn_escaping


@dataclass(frozen=True)
class Trap:
    name: str
    cause: str  # what really happened, in plain words
    hint: str  # the narrowest fix


_INTERPOLATION = re.compile(
    r"invalid interpolation syntax in|InterpolationSyntaxError|"
    r"'%' must be followed by '%' or '\('"
)
_DRIVER_SCHEME = re.compile(r"postgres(?:ql)?\+(?P<driver>\w+)://")
_WRONG_DRIVER = re.compile(
    r"invalid dsn|missing \"=\" after|scheme is expected to be|invalid connection option|"
    r"invalid URI|could not translate host name",
    re.IGNORECASE,
)
_HIDDEN_PASSWORD = re.compile(
    r"render_as_string\(\s*\)|hide_password\s*=\s*True|str\(\s*[\w.]*url\s*\)|"
    r"repr\(\s*[\w.]*url\s*\)|f\"\{[\w.]*url\}\"",
    re.IGNORECASE,
)

CONFIGPARSER_PERCENT = Trap(
    "configparser-percent",
    cause="the app hands a value containing `%` to configparser, which reads `%` as the start "
    "of an interpolation (alembic's Config.set_main_option goes through configparser); here "
    "it is likely the database URL: staging's generated password always has `%` (escaped or "
    "not), and a production password with `%` breaks the same way",
    hint="escape it for configparser: config.set_main_option('sqlalchemy.url', "
    "url.replace('%', '%%')), or skip configparser: put the URL or engine in "
    "config.attributes and read it in env.py",
)
LIBPQ_URL = Trap(
    "libpq-url",
    cause="libpq parsed a URL whose user or password holds unescaped URL characters "
    "(@ : / % # or a space), so it split the URL in the wrong place",
    hint="percent-escape user and password with urllib.parse.quote(value, safe=''), or pass "
    "them to the driver as separate keyword arguments",
)
HIDDEN_PASSWORD = Trap(
    "sqlalchemy-hidden-password",
    cause="the URL the app connects with was rendered by SQLAlchemy with the password hidden: "
    "str(url), repr(url) and url.render_as_string() (hide_password=True) write `***` in "
    "place of the password, and Postgres rejects `***`",
    hint="render it with url.render_as_string(hide_password=False), or hand the URL object "
    "itself (not its string) to create_engine / alembic",
)


def _wrong_driver(driver: str) -> Trap:
    return Trap(
        "driver-scheme",
        cause=f"a SQLAlchemy URL with a driver suffix (postgresql+{driver}://) was handed to a "
        "driver that only accepts postgresql:// (libpq, psycopg and asyncpg do not know "
        "SQLAlchemy's `+driver` part)",
        hint=f"give the raw driver a plain postgresql:// URL (strip '+{driver}'), e.g. "
        "make_url(url).set(drivername='postgresql').render_as_string(hide_password=False); "
        "keep the +driver form for create_engine only",
    )


def find_trap(text: str) -> Trap | None:
    """The known trap the output shows, or None."""
    if _INTERPOLATION.search(text):
        return CONFIGPARSER_PERCENT
    scheme = _DRIVER_SCHEME.search(text)
    if scheme and _WRONG_DRIVER.search(text):
        return _wrong_driver(scheme["driver"])
    if mentions_dsn_escaping(text):
        return LIBPQ_URL
    if is_db_auth_failure(text) and _HIDDEN_PASSWORD.search(text):
        return HIDDEN_PASSWORD
    return None
