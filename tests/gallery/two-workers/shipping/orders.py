from __future__ import annotations

from datetime import timedelta

import psycopg
from temporalio import activity, workflow

from shipping.settings import Settings


@activity.defn
def store_order(item: str) -> int:
    with psycopg.connect(**Settings().dsn_parts()) as conn:  # type: ignore[arg-type]
        row = conn.execute("insert into orders (item) values (%s) returning id", (item,))
        return int(row.fetchone()[0])  # type: ignore[index]


@workflow.defn(sandboxed=False)
class PlaceOrder:
    @workflow.run
    async def run(self, item: str = "parcel") -> int:
        return await workflow.execute_activity(
            store_order, item, start_to_close_timeout=timedelta(seconds=30)
        )
