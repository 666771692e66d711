from __future__ import annotations

import csv
import io
import runpy
from pathlib import Path

APP = Path(__file__).resolve().parent.parent


def test_committed_fixture_is_what_the_generator_makes() -> None:
    generator = runpy.run_path(str(APP / "scripts" / "make_fixture.py"))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=generator["FIELDS"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(generator["make_rows"]())
    committed = (APP / "everflow" / "data" / "conversions.csv").read_text(encoding="utf-8")
    assert out.getvalue() == committed
