"""`python -m pricecache.migrate`: the schema, idempotent."""

from __future__ import annotations

import psycopg

from pricecache.settings import Settings

SCHEMA = """
create table if not exists quotes (
    sku text primary key,
    price_cents integer not null check (price_cents > 0),
    cache_key text not null,
    quoted_at timestamptz not null default now()
)
"""


def main() -> None:
    with psycopg.connect(**Settings().conninfo()) as conn:
        conn.execute(SCHEMA)


if __name__ == "__main__":
    main()
