from __future__ import annotations

import psycopg
from temporalio import activity

from ledger.settings import Settings


def balance_after(entries: list[int], amount: int) -> int:
    return sum(entries) + amount


@activity.defn
def post_entry(amount: int) -> int:
    with psycopg.connect(**Settings().connect_kwargs()) as conn:  # type: ignore[arg-type]
        rows = conn.execute("select amount from entries").fetchall()
        conn.execute("insert into entries (amount) values (%s)", (amount,))
    return balance_after([r[0] for r in rows], amount)
