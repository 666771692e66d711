from __future__ import annotations

from decimal import Decimal

from everflow.activities import DailyTotal, Rejected, aggregate, read_fixture


def row(
    day: str = "2024-05-01", offer: str = "201", revenue: str = "10.00", **kw: str
) -> dict[str, str]:
    return {
        "date": day,
        "offer_id": offer,
        "affiliate_id": kw.get("affiliate_id", "1001"),
        "revenue": revenue,
        "payout": kw.get("payout", "5.00"),
    }


def test_sums_per_day_and_offer_exactly() -> None:
    summary = aggregate(
        [
            row(revenue="0.10", payout="0.05"),
            row(revenue="0.20", payout="0.05"),
            row(offer="202", revenue="1.00"),
            row(day="2024-05-02", revenue="3.00"),
        ]
    )
    assert summary.rows_read == 4
    assert summary.rejected == []
    assert summary.totals == [
        DailyTotal(day="2024-05-01", offer_id=201, conversions=2, revenue="0.30", payout="0.10"),
        DailyTotal(day="2024-05-01", offer_id=202, conversions=1, revenue="1.00", payout="5.00"),
        DailyTotal(day="2024-05-02", offer_id=201, conversions=1, revenue="3.00", payout="5.00"),
    ]


def test_bad_rows_are_rejected_with_their_line_and_value() -> None:
    summary = aggregate(
        [
            row(),
            row(revenue="n/a"),
            row(offer=""),
            row(day="2024-02-30"),
            row(revenue="-1"),
            row(payout="1e400"),
            row(affiliate_id="x"),
        ]
    )
    assert [t.conversions for t in summary.totals] == [1]
    assert summary.rejected == [
        Rejected(line=3, reason="revenue 'n/a' is not a number"),
        Rejected(line=4, reason="offer_id '' is not a positive integer"),
        Rejected(line=5, reason="date '2024-02-30' is not a valid YYYY-MM-DD date"),
        Rejected(line=6, reason="revenue '-1' is out of range"),
        Rejected(line=7, reason="payout '1e400' is out of range"),
        Rejected(line=8, reason="affiliate_id 'x' is not a positive integer"),
    ]


def test_bundled_fixture_aggregates_every_good_row_once() -> None:
    rows = read_fixture()
    summary = aggregate(rows)
    assert summary.rows_read == len(rows) > 300
    assert len(summary.rejected) == 8
    assert sum(t.conversions for t in summary.totals) == len(rows) - 8
    keys = [(t.day, t.offer_id) for t in summary.totals]
    assert len(keys) == len(set(keys))
    bad_lines = {r.line for r in summary.rejected}
    good = [r for line, r in enumerate(rows, start=2) if line not in bad_lines]
    assert sum(Decimal(t.revenue) for t in summary.totals) == sum(
        Decimal(r["revenue"]) for r in good
    )
