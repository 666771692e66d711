"""Fresh databases per test, cloned from a template with `CREATE DATABASE … TEMPLATE …`.

The template is a copy of the app's database taken right after the setup phase (the
migrations), while nothing is connected to it; each test gets its own clone and the clone
is dropped after the test. One admin connection (to the `postgres` maintenance database)
serves the whole session, so a clone costs the `CREATE DATABASE` and nothing else.
"""

from __future__ import annotations

import dataclasses
import secrets
from typing import TYPE_CHECKING, Any

from staging.services.base import PostgresEndpoint

if TYPE_CHECKING:
    import psycopg

# Attached to a live run the app's database is in use (the worker), so it cannot be a
# template: clones start from Postgres' own empty template instead.
EMPTY_TEMPLATE = "template1"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class DatabaseFactory:
    """Clones of `template` on the server of `endpoint`; not thread-safe (one per session)."""

    def __init__(self, endpoint: PostgresEndpoint, template: str) -> None:
        self.endpoint = endpoint
        self.template = template
        self._admin: psycopg.Connection[Any] | None = None
        self._made: set[str] = set()

    @classmethod
    def from_app_database(cls, endpoint: PostgresEndpoint, prefix: str) -> DatabaseFactory:
        """A factory whose template is a copy of the app's database as it is now."""
        factory = cls(endpoint, f"{prefix}_template")
        factory.execute(
            f"CREATE DATABASE {quote_ident(factory.template)} "
            f"TEMPLATE {quote_ident(endpoint.database)}"
        )
        factory._made.add(factory.template)
        return factory

    def execute(self, sql: str) -> None:
        self.admin().execute(sql.encode())

    def admin(self) -> psycopg.Connection[Any]:
        if self._admin is None or self._admin.closed:
            from staging.services.connect import postgres_connection

            self._admin = postgres_connection(
                dataclasses.replace(self.endpoint, database="postgres"), autocommit=True
            )
        return self._admin

    def create(self, label: str = "test") -> PostgresEndpoint:
        """A new database cloned from the template; its endpoint (same server and user)."""
        name = f"{_slug(label)[:40]}_{secrets.token_hex(4)}"
        self.execute(f"CREATE DATABASE {quote_ident(name)} TEMPLATE {quote_ident(self.template)}")
        self._made.add(name)
        return dataclasses.replace(self.endpoint, database=name)

    def drop(self, name: str) -> None:
        # FORCE (Postgres 13+): a connection the test leaked must not keep its clone alive.
        self.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
        self._made.discard(name)

    def close(self) -> None:
        """Drop every database this factory made (the template last), then disconnect."""
        try:
            for name in sorted(self._made, key=lambda n: n == self.template):
                self.drop(name)
        finally:
            if self._admin is not None:
                self._admin.close()
                self._admin = None


def _slug(text: str) -> str:
    slug = "".join(c if c.isalnum() else "_" for c in text.lower()).strip("_")
    return slug or "test"
