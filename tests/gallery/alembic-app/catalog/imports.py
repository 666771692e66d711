from __future__ import annotations

from datetime import timedelta

import psycopg
from temporalio import activity, workflow

from catalog.settings import Settings


def cents(price: str) -> int:
    euros, _, rest = price.partition(".")
    return int(euros) * 100 + int((rest + "00")[:2])


@activity.defn
def upsert_product(sku: str, price: str) -> int:
    with psycopg.connect(Settings().db_dsn.get_secret_value()) as conn:
        conn.execute(
            "insert into products values (%s, %s) on conflict (sku) do update "
            "set price_cents = excluded.price_cents",
            (sku, cents(price)),
        )
        return int(conn.execute("select count(*) from products").fetchone()[0])  # type: ignore[index]


@workflow.defn(sandboxed=False)
class ImportProduct:
    @workflow.run
    async def run(self, sku: str = "SKU-1", price: str = "9.90") -> int:
        return await workflow.execute_activity(
            upsert_product, args=[sku, price], start_to_close_timeout=timedelta(seconds=30)
        )
