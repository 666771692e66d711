"""`python -m ledger.migrate`: create the ledger's table."""

from __future__ import annotations

import psycopg

from ledger.settings import Settings


def main() -> None:
    with psycopg.connect(**Settings().connect_kwargs()) as conn:  # type: ignore[arg-type]
        conn.execute("create table if not exists entries (id serial primary key, amount int)")


if __name__ == "__main__":
    main()
