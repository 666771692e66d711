"""The pipeline's steps. They run in the worker's thread pool, outside the workflow
sandbox, so they may do I/O: read the fixture, talk to Postgres, post to Slack."""

from __future__ import annotations

import csv
import json
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from importlib import resources

import psycopg
import structlog
from temporalio import activity

from everflow.settings import get_settings

log = structlog.get_logger(__name__)

FIXTURE = "conversions.csv"
CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("1000000")  # a single conversion above this is a data error


@dataclass
class DailyTotal:
    day: str  # ISO date
    offer_id: int
    conversions: int
    revenue: str  # decimal strings: the JSON payload converter has no Decimal
    payout: str


@dataclass
class Rejected:
    line: int  # line in the source file, header = 1
    reason: str


@dataclass
class Summary:
    rows_read: int
    totals: list[DailyTotal] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


def read_fixture() -> list[dict[str, str]]:
    text = resources.files("everflow").joinpath("data", FIXTURE).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def _day(raw: str) -> str:
    try:
        return date.fromisoformat(raw).isoformat()
    except ValueError:
        raise ValueError(f"date {raw!r} is not a valid YYYY-MM-DD date") from None


def _amount(name: str, raw: str) -> Decimal:
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ValueError(f"{name} {raw!r} is not a number") from None
    if not value.is_finite() or not Decimal(0) <= value <= MAX_AMOUNT:
        raise ValueError(f"{name} {raw!r} is out of range")
    return value


def _positive_int(name: str, raw: str) -> int:
    if not raw.isdigit() or int(raw) == 0:
        raise ValueError(f"{name} {raw!r} is not a positive integer")
    return int(raw)


def aggregate(rows: list[dict[str, str]]) -> Summary:
    """Validate rows and sum them per (day, offer). Bad rows are rejected, not fatal."""
    sums: dict[tuple[str, int], list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 3)
    rejected: list[Rejected] = []
    for line, row in enumerate(rows, start=2):
        try:
            day = _day(row.get("date") or "")
            offer_id = _positive_int("offer_id", row.get("offer_id") or "")
            _positive_int("affiliate_id", row.get("affiliate_id") or "")
            revenue = _amount("revenue", row.get("revenue") or "")
            payout = _amount("payout", row.get("payout") or "")
        except ValueError as exc:
            rejected.append(Rejected(line=line, reason=str(exc)))
            continue
        acc = sums[(day, offer_id)]
        acc[0] += 1
        acc[1] += revenue
        acc[2] += payout
    totals = [
        DailyTotal(
            day=day,
            offer_id=offer_id,
            conversions=int(count),
            revenue=str(revenue.quantize(CENT)),
            payout=str(payout.quantize(CENT)),
        )
        for (day, offer_id), (count, revenue, payout) in sorted(sums.items())
    ]
    return Summary(rows_read=len(rows), totals=totals, rejected=rejected)


@activity.defn
def extract(pipeline: str) -> list[dict[str, str]]:
    rows = read_fixture()
    log.info("extract.done", pipeline=pipeline, rows=len(rows))
    return rows


@activity.defn
def transform(rows: list[dict[str, str]]) -> Summary:
    summary = aggregate(rows)
    log.info(
        "transform.done",
        rows=summary.rows_read,
        totals=len(summary.totals),
        rejected=len(summary.rejected),
    )
    return summary


UPSERT = """
    insert into daily_conversions (day, offer_id, conversions, revenue, payout)
    values (%(day)s, %(offer_id)s, %(conversions)s, %(revenue)s, %(payout)s)
    on conflict (day, offer_id) do update set
        conversions = excluded.conversions,
        revenue = excluded.revenue,
        payout = excluded.payout,
        updated_at = now()
"""

RECORD_RUN = """
    insert into pipeline_runs (workflow_id, run_id, pipeline, rows_written)
    values (%s, %s, %s, %s)
    on conflict (workflow_id, run_id) do update set
        rows_written = excluded.rows_written, finished_at = now()
"""


@activity.defn
def load(pipeline: str, totals: list[DailyTotal]) -> int:
    """Upsert the day/offer totals; safe to retry and to re-run for the same days."""
    settings = get_settings()
    info = activity.info()
    with (
        psycopg.connect(settings.database_url, connect_timeout=10) as conn,
        conn.cursor() as cur,
    ):
        cur.executemany(UPSERT, [vars(t) for t in totals])
        cur.execute(RECORD_RUN, (info.workflow_id, info.workflow_run_id, pipeline, len(totals)))
    log.info("load.done", pipeline=pipeline, rows=len(totals), db=settings.describe_db())
    return len(totals)


@activity.defn
def notify(text: str) -> bool:
    """Post `text` to the team's Slack channel. Returns False when no webhook is set."""
    url = get_settings().slack_webhook_url
    if not url:
        log.warning("notify.skipped", reason="SLACK_WEBHOOK_URL is empty", text=text)
        return False
    request = urllib.request.Request(
        url,
        data=json.dumps({"text": text}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        response.read()
    log.info("notify.sent", text=text)
    return True
