"""The activity: a quote goes to Redis (what the storefront reads) and to Postgres."""

from __future__ import annotations

import psycopg
import redis.asyncio as redis
from temporalio import activity

from pricecache.pricing import cache_key, price_cents
from pricecache.settings import Settings

CACHE_TTL = 3600


@activity.defn
async def quote_item(sku: str) -> int:
    settings = Settings()
    price = price_cents(sku)
    key = cache_key(sku)
    cache = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=5, socket_timeout=5)
    try:
        await cache.set(key, price, ex=CACHE_TTL)
    finally:
        await cache.aclose()
    conninfo = settings.conninfo()
    async with await psycopg.AsyncConnection.connect(**conninfo) as conn:
        await conn.execute(
            "insert into quotes (sku, price_cents, cache_key) values (%s, %s, %s) "
            "on conflict (sku) do update set price_cents = excluded.price_cents, "
            "cache_key = excluded.cache_key, quoted_at = now()",
            (sku, price, key),
        )
    return price
