"""Create the schema: `python -m everflow.migrate`. Idempotent; exits 1 on failure."""

from __future__ import annotations

import sys

import psycopg

from everflow.settings import get_settings

SCHEMA = [
    """
    create table if not exists daily_conversions (
        day date not null,
        offer_id integer not null,
        conversions integer not null,
        revenue numeric(14, 2) not null,
        payout numeric(14, 2) not null,
        updated_at timestamptz not null default now(),
        primary key (day, offer_id)
    )
    """,
    """
    create table if not exists pipeline_runs (
        workflow_id text not null,
        run_id text not null,
        pipeline text not null,
        rows_written integer not null,
        finished_at timestamptz not null default now(),
        primary key (workflow_id, run_id)
    )
    """,
]


def migrate() -> None:
    settings = get_settings()
    # Keyword parameters go to libpq as they are: nothing to escape.
    with psycopg.connect(
        host=settings.db_host,
        port=settings.db_port,
        user=settings.db_user,
        password=settings.db_password.get_secret_value(),
        dbname=settings.db_name,
        connect_timeout=10,
    ) as conn:
        for statement in SCHEMA:
            conn.execute(statement)


def main() -> int:
    settings = get_settings()
    try:
        migrate()
    except psycopg.Error as exc:
        print(f"migrate: failed on {settings.describe_db()}: {exc}", file=sys.stderr)
        return 1
    print(f"migrate: schema is up to date on {settings.describe_db()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
