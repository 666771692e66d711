"""A check written in Python: run by `staging run` after the pipeline, on the live database.

`[tool.staging] tests = ["tests/staging"]` runs this file in the checks phase, with
staging's pytest fixtures attached to the run's services; outside a run it is skipped
(the `staging_check` marker). A failure here is the run's `check.failed`, naming the test.
"""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest
from everflow.activities import aggregate, read_fixture

pytestmark = pytest.mark.staging_check


def expected_totals_per_offer() -> dict[int, tuple[int, Decimal, Decimal]]:
    """What the app's own transform makes of the fixture, summed per offer."""
    totals: dict[int, tuple[int, Decimal, Decimal]] = {}
    for t in aggregate(read_fixture()).totals:
        count, revenue, payout = totals.get(t.offer_id, (0, Decimal(0), Decimal(0)))
        totals[t.offer_id] = (
            count + t.conversions,
            revenue + Decimal(t.revenue),
            payout + Decimal(t.payout),
        )
    return totals


def test_conversion_totals_per_offer_match_the_fixture(staging_services):
    with psycopg.connect(**staging_services.postgres.conninfo()) as conn:
        rows = conn.execute(
            "select offer_id, sum(conversions)::int, sum(revenue), sum(payout) "
            "from daily_conversions group by offer_id order by offer_id"
        ).fetchall()
    loaded = {offer: (count, revenue, payout) for offer, count, revenue, payout in rows}
    expected = expected_totals_per_offer()
    assert loaded == expected, (
        f"daily_conversions totals per offer differ from the fixture's: "
        f"loaded {loaded}, expected {expected}"
    )


def test_the_pipeline_recorded_its_run(staging_services):
    with psycopg.connect(**staging_services.postgres.conninfo()) as conn:
        (runs,) = conn.execute(
            "select count(*) from pipeline_runs where pipeline = 'everflow'"
        ).fetchone()
    assert runs >= 1, "the everflow pipeline wrote no row to pipeline_runs"
