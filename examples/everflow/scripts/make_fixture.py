"""Regenerate everflow/data/conversions.csv, the bundled sample of affiliate conversions.

Deterministic (fixed seed), so the committed file only changes when this script does.
A handful of rows are deliberately malformed, as real exports are: the pipeline must
reject them without failing.

    python scripts/make_fixture.py
"""

from __future__ import annotations

import csv
import random
from datetime import date, timedelta
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "everflow" / "data" / "conversions.csv"
FIELDS = ["date", "offer_id", "affiliate_id", "revenue", "payout"]
GOOD_ROWS = 320
# (row index to insert at, the malformed row): one per way real exports go wrong.
BAD_ROWS = [
    (17, {"date": "2024-05-02", "offer_id": "", "affiliate_id": "1004", "revenue": "12.00"}),
    (45, {"date": "2024-05-02", "offer_id": "203", "affiliate_id": "1001", "revenue": "n/a"}),
    (88, {"date": "2024-05-31", "offer_id": "201", "affiliate_id": "1007", "revenue": "-4.50"}),
    (120, {"date": "2024-02-30", "offer_id": "202", "affiliate_id": "1002", "revenue": "8.00"}),
    (161, {"date": "2024-05-04", "offer_id": "abc", "affiliate_id": "1003", "revenue": "9.99"}),
    (204, {"date": "2024-05-05", "offer_id": "204", "affiliate_id": "", "revenue": "15.00"}),
    (250, {"date": "", "offer_id": "205", "affiliate_id": "1009", "revenue": "11.00"}),
    (299, {"date": "2024-05-07", "offer_id": "201", "affiliate_id": "1011", "revenue": "1e400"}),
]


def make_rows(seed: int = 20240501) -> list[dict[str, str]]:
    rng = random.Random(seed)
    start = date(2024, 5, 1)
    rows: list[dict[str, str]] = []
    for _ in range(GOOD_ROWS):
        revenue = rng.randint(200, 6000) / 100
        rows.append(
            {
                "date": (start + timedelta(days=rng.randrange(7))).isoformat(),
                "offer_id": str(rng.choice([201, 202, 203, 204, 205])),
                "affiliate_id": str(rng.randint(1001, 1012)),
                "revenue": f"{revenue:.2f}",
                "payout": f"{revenue * rng.choice([0.5, 0.6, 0.7]):.2f}",
            }
        )
    for index, bad in BAD_ROWS:
        rows.insert(index, {"payout": "1.00", **bad})
    return rows


def main() -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(make_rows())
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
