"""`python -m reports.migrate`."""

from __future__ import annotations

import psycopg

from reports.settings import Settings

if __name__ == "__main__":
    with psycopg.connect(**Settings().connect()) as conn:  # type: ignore[arg-type]
        conn.execute("create table if not exists reports (name text, lines int)")
