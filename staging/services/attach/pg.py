"""A run's own database and role on an existing Postgres server, through its admin URL.

The role gets a fresh hostile password (the server sees only its SCRAM verifier), owns
its database (so migrations can create tables) and nothing else: `CONNECT` on the
database is revoked from PUBLIC, so no other run's role gets in. The admin needs
CREATEDB and CREATEROLE (a superuser has both).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from staging.errors import ConfigError, ServiceUnavailable
from staging.imports import import_module
from staging.redact import Redactor
from staging.services.attach.records import MARK, OwnerRecord
from staging.services.attach.target import AdminUrl

import_module("psycopg")  # under the import lock: other threads may be importing it too
import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

_MAX_IDENT = 63
_AUTH_STATES = ("28P01", "28000")  # invalid_password, invalid_authorization_specification


def run_name(base: str, run_id: str) -> str:
    """`<base>_<run id>`: a Postgres identifier apps need not quote (<= 63 bytes)."""
    suffix = "_" + re.sub(r"[^a-z0-9_]", "_", run_id.lower())
    head = re.sub(r"[^a-z0-9_]", "_", base.lower()) or "staging"
    if not (head[0].isalpha() or head[0] == "_"):
        head = "s" + head
    return head[: _MAX_IDENT - len(suffix)] + suffix


@contextmanager
def admin_connection(admin: AdminUrl) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit admin connection; a refusal is `services.unavailable`, never echoing
    the URL's password."""

    redact = Redactor(list(admin.secrets()))
    try:
        conn = psycopg.connect(admin.conninfo(), autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        auth = getattr(exc, "sqlstate", None) in _AUTH_STATES or "authentication" in first
        raise ServiceUnavailable(
            f"the Postgres server of {admin.env} refused the admin connection"
            if auth
            else f"the Postgres server of {admin.env} ({admin.host}:{admin.port}) does not answer",
            expected=f"an admin login (CREATEDB, CREATEROLE) at {admin.host}:{admin.port}",
            observed=redact(first),
            hint=f"check the user and password in {admin.env} (percent-escape @ : / % # in them)"
            if auth
            else f"check the host and port in {admin.env}, and that the server runs and "
            "accepts TCP connections from this machine",
        ) from None
    try:
        yield conn
    finally:
        conn.close()


def create_run_database(conn: psycopg.Connection[Any], record: OwnerRecord, password: str) -> None:
    """The role (with its record, atomically), then its database, closed to PUBLIC."""

    role, database = sql.Identifier(record.role), sql.Identifier(record.database)
    verifier = conn.pgconn.encrypt_password(
        password.encode(), record.role.encode(), b"scram-sha-256"
    ).decode()
    try:
        with conn.transaction():
            conn.execute(
                sql.SQL(
                    "CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
                    "PASSWORD {}"
                ).format(role, sql.Literal(verifier))
            )
            conn.execute(sql.SQL("COMMENT ON ROLE {} IS {}").format(role, record.text()))
        # A role we just created: an admin that is not superuser must be able to hand it
        # a database (PostgreSQL 16+ asks for SET on the role).
        if not _superuser(conn):
            conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(role))
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(database, role))
        conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(database, record.text()))
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(database))
        conn.execute(
            sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(database, role)
        )
    except psycopg.errors.InsufficientPrivilege as exc:
        raise ConfigError(
            "the Postgres admin may not create this run's database and role",
            expected="an admin role with CREATEDB and CREATEROLE",
            observed=f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}",
            hint="grant them (ALTER ROLE <admin> CREATEDB CREATEROLE) or use a superuser URL",
        ) from None


def _superuser(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    return bool(row and row[0])


def drop_run_database(conn: psycopg.Connection[Any], role: str, database: str) -> None:
    """Their connections ended, the database dropped, then the role (it holds the record)."""

    conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE (usename = %s OR datname = %s) AND pid <> pg_backend_pid()",
        (role, database),
    )
    if database:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
        )
    owned = conn.execute(
        "SELECT d.datname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba "
        "WHERE r.rolname = %s",
        (role,),
    ).fetchall()
    for (name,) in owned:  # one the record did not name (a run killed half-way)
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
    if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def run_records(conn: psycopg.Connection[Any]) -> list[OwnerRecord]:
    """Every run's record on this server (from role comments)."""
    rows = conn.execute(
        "SELECT rolname, shobj_description(oid, 'pg_authid') FROM pg_roles "
        "WHERE shobj_description(oid, 'pg_authid') LIKE %s",
        (MARK + "%",),
    ).fetchall()
    records = []
    for rolname, comment in rows:
        record = OwnerRecord.parse(comment)
        if record is not None and record.role == rolname:
            records.append(record)
    return records


def orphan_databases(conn: psycopg.Connection[Any]) -> list[OwnerRecord]:
    """Records on databases whose role is gone (never by our teardown: a manual DROP ROLE
    is refused while the role owns a database, so these are rare)."""
    rows = conn.execute(
        "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database "
        "WHERE shobj_description(oid, 'pg_database') LIKE %s",
        (MARK + "%",),
    ).fetchall()
    roles = {r.role for r in run_records(conn)}
    found = []
    for datname, comment in rows:
        record = OwnerRecord.parse(comment)
        if record is not None and record.database == datname and record.role not in roles:
            found.append(record)
    return found


def set_record(conn: psycopg.Connection[Any], record: OwnerRecord) -> None:

    conn.execute(
        sql.SQL("COMMENT ON ROLE {} IS {}").format(sql.Identifier(record.role), record.text())
    )


def server_version(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute("SHOW server_version").fetchone()
    return f"postgres {row[0] if row else '?'}"
