"""`python -m shipping.migrate`."""

from __future__ import annotations

import psycopg

from shipping.settings import Settings

if __name__ == "__main__":
    with psycopg.connect(**Settings().dsn_parts()) as conn:  # type: ignore[arg-type]
        conn.execute("create table if not exists orders (id serial primary key, item text)")
