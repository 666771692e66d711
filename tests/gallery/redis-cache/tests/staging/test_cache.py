"""Checks on the run's live services: what the storefront will read is in Redis.

`[tool.staging] tests = ["tests/staging"]` runs this after the pipeline, with staging's
fixtures attached to the run; outside a run it is skipped (the `staging_check` marker).
The app's own Settings (from the delivered .env) name the Redis it reaches.
"""

from __future__ import annotations

import psycopg
import pytest
import redis
from pricecache.settings import Settings

pytestmark = pytest.mark.staging_check


def test_every_recorded_quote_is_cached_in_redis(staging_services):
    with psycopg.connect(**staging_services.postgres.conninfo()) as conn:
        recorded = dict(conn.execute("select cache_key, price_cents from quotes").fetchall())
    assert recorded, "no quote was recorded in Postgres"
    url = Settings().redis_url
    cache = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
    try:
        cached = {key: cache.get(key) for key in recorded}
        ttls = {key: cache.ttl(key) for key in recorded}
    finally:
        cache.close()
    missing = sorted(key for key, value in cached.items() if value is None)
    assert not missing, (
        f"Redis at {url} holds no value for {missing}, though Postgres recorded those "
        "quotes: the worker's cache writes never reached the storefront's cache"
    )
    assert {key: int(value) for key, value in cached.items()} == recorded
    assert all(ttl > 0 for ttl in ttls.values()), f"cached quotes must expire: {ttls}"


def test_the_worker_read_redis_url_from_the_dotenv_file(staging_settings):
    assert staging_settings.source("redis_url") == "dotenv"
