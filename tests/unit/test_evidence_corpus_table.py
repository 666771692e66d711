"""The bench's corpus table judges a run from its verdict and console (no services)."""

from __future__ import annotations

from benchmarks.corpus_table import judge, render
from tests.corpus import load_case

CONSOLE = """\
✗ setup          0.19s
· verdict: /app/.staging/runs/r1/verdict.json

setup.failed: setup step 'migrate' (python -m everflow.migrate) failed with exit code 1: \
ValueError: invalid interpolation syntax in '***' at position 23; the app hands a value \
containing `%` to configparser
  │ ValueError: invalid interpolation syntax in '***' at position 23
  │ at everflow/migrate.py:41 in alembic_config: file_config.set("alembic", "sqlalchemy.url", url)
Hint: escape it for configparser

staging FAILED in 2.8s · run r1 · /app/.staging/runs/r1
"""
VERDICT = {"status": "failed", "diagnosis": {"class": "setup.failed"}}


def test_a_case_with_its_class_and_deciding_line_on_the_console() -> None:
    row = judge(load_case("alembic-percent"), VERDICT, CONSOLE, 2.84)

    assert (row.class_ok, row.deciding_ok, row.missing) == (True, True, ())
    assert (
        render([row], "process")
        .splitlines()[0]
        .endswith("class correct 1/1, deciding line in the console's first 12 diagnosis lines 1/1")
    )


def test_a_deciding_line_below_the_first_12_lines_does_not_count() -> None:
    pushed = CONSOLE.replace("  │ ValueError", "  │ noise\n" * 12 + "  │ ValueError")
    pushed = pushed.replace("  │ at everflow/migrate.py:41", "  │ at elsewhere.py:1")

    row = judge(load_case("alembic-percent"), VERDICT, pushed, 1.0)

    assert not row.deciding_ok
    assert row.missing == ("everflow/migrate.py:41 in alembic_config",)
    assert "| NO: everflow/migrate.py:41 in alembic_config |" in render([row], "process")


def test_a_wrong_class_or_no_verdict_is_not_correct() -> None:
    case = load_case("alembic-percent")

    assert not judge(case, {"diagnosis": {"class": "db.auth_failed"}}, CONSOLE, 1).class_ok
    assert judge(case, None, "", 1).observed == "no verdict"
    assert not judge(case, None, "", 1).class_ok
