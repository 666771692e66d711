from __future__ import annotations

from datetime import timedelta

import psycopg
from temporalio import activity, workflow

from shop.settings import ShopSettings


def total(amounts: list[int]) -> int:
    return sum(a for a in amounts if a > 0)


@activity.defn
def roll_up(day: str) -> int:
    with psycopg.connect(ShopSettings().database_url) as conn:
        conn.execute("insert into rollups values (%s, %s)", (day, total([3, 4])))
        return int(conn.execute("select count(*) from rollups").fetchone()[0])  # type: ignore[index]


@workflow.defn(sandboxed=False)
class DailyRollup:
    @workflow.run
    async def run(self, day: str = "today") -> int:
        return await workflow.execute_activity(
            roll_up, day, start_to_close_timeout=timedelta(seconds=30)
        )
