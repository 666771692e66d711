"""Phase 8: post-conditions — notification limits, then SQL assertions on the staging DB.

A SQL check is an assertion, not a script: one statement (`load_config` refuses others),
run in a read-only transaction that is rolled back, and judged on exactly one row with
one boolean column. `select true; drop table t` can neither pass nor drop the table.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg

from staging.capture import CaptureServer
from staging.config.sql import NotOneStatement, single_statement
from staging.context import ConfigDone, RunContext, ServicesDone
from staging.result import Diagnosis, FailureClass, PhaseResult
from staging.services.base import PostgresEndpoint
from staging.services.connect import postgres_connection

_BOOL_OID = 16


def checks_phase(ctx: RunContext) -> PhaseResult:
    loaded, services = ctx.need(ConfigDone).loaded, ctx.need(ServicesDone)
    by_name = {p.name: p for p in loaded.config.pipelines}
    ran = [(by_name[r.name], r) for r in ctx.pipelines if r.name in by_name]
    if not ran:
        return PhaseResult.skipped("checks", "no pipelines ran")

    for pipeline, record in ran:
        limit = pipeline.max_notifications
        if limit is not None and record.notifications > limit:
            sample = _sample_notifications(services.captures)
            return PhaseResult.failed(
                "checks",
                Diagnosis(
                    FailureClass.NOTIFICATIONS_FLOOD,
                    f"pipeline {pipeline.name!r} sent {record.notifications} notification(s); "
                    f"the limit is {limit}. In production each one reaches a real channel.",
                    hint="notify once per failed run, not per row/attempt; captured messages are "
                    "in notifications.json",
                    evidence=tuple(sample),
                ),
            )

    results: list[dict[str, object]] = []
    with read_only_connection(services.environment.postgres) as conn:
        for pipeline, record in ran:
            for check in pipeline.checks:
                verdict = judge_check(conn, check)
                value = verdict.value
                record.checks.append({"check": check, "value": repr(value), "ok": verdict.ok})
                results.append({"pipeline": pipeline.name, "check": check, "value": repr(value)})
                if not verdict.ok:
                    return _failed(pipeline.name, check, verdict)
    from staging.phases.python_checks import run_python_checks

    python_failed = run_python_checks(ctx, [record for _, record in ran])
    if python_failed is not None:
        return python_failed
    # Python checks are listed with the SQL ones in each pipeline's record.
    in_python = sum(len(record.checks) for _, record in ran) - len(results)
    python = f", {in_python} Python check(s)" if in_python else ""
    return PhaseResult.passed(
        "checks",
        summary=f"{len(results)} SQL check(s){python}, notifications within limits",
        checks=results,
    )


@contextmanager
def read_only_connection(endpoint: PostgresEndpoint) -> Iterator[psycopg.Connection[Any]]:
    """The checks' one connection: every transaction read-only, each check rolled back."""
    with postgres_connection(endpoint, autocommit=False) as conn:
        conn.read_only = True
        yield conn


@dataclass(frozen=True)
class CheckVerdict:
    ok: bool
    value: object = None
    why: str = ""  # when not ok: what was seen
    # config.invalid when the check cannot be an assertion whatever the data (not one
    # statement, not valid SQL, writes, not one boolean column); check.failed when the
    # data decides (false, NULL, no row, several rows, an error raised by the data).
    failure_class: FailureClass = FailureClass.CHECK_FAILED


def judge_check(conn: psycopg.Connection[Any], check: str) -> CheckVerdict:
    """Run one check in a read-only transaction, roll it back, judge its single row."""
    try:
        statement = single_statement(check)  # load_config refused others; a direct caller too
    except NotOneStatement as exc:
        return CheckVerdict(False, why=str(exc), failure_class=FailureClass.CONFIG_INVALID)
    sql = statement if statement.lower().startswith(("select", "with")) else f"select {statement}"
    try:
        cursor = conn.execute(sql)
        columns = cursor.description or []
        rows = cursor.fetchmany(2) if columns else []
    except (psycopg.errors.SyntaxError, psycopg.errors.ReadOnlySqlTransaction) as exc:
        return CheckVerdict(False, why=_first_line(exc), failure_class=FailureClass.CONFIG_INVALID)
    except psycopg.Error as exc:
        return CheckVerdict(False, why=f"the query raised: {_first_line(exc)}")
    finally:
        # A lost server: the failed verdict stands and the runner asks whether the
        # service is gone (services.lost) before blaming the app.
        with contextlib.suppress(psycopg.OperationalError):
            conn.rollback()
    shape = _shape_problem(columns)
    if shape is not None:
        return CheckVerdict(False, why=shape, failure_class=FailureClass.CONFIG_INVALID)
    if len(rows) != 1:
        return CheckVerdict(
            False, why="it returned no row" if not rows else "it returned several rows"
        )
    value = rows[0][0]
    return CheckVerdict(value is True, value, "" if value is True else f"it returned {value!r}")


def _shape_problem(columns: Sequence[psycopg.Column]) -> str | None:
    if not columns:
        return "it returned no result (expected one row with one boolean column)"
    if len(columns) != 1:
        return f"it returns {len(columns)} columns (expected one boolean column)"
    if columns[0].type_code != _BOOL_OID:
        info = psycopg.adapters.types.get(columns[0].type_code)
        kind = info.name if info is not None else f"oid {columns[0].type_code}"
        return f"it returns a column of type {kind}, not boolean (write a comparison: x > 0)"
    return None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _failed(pipeline: str, check: str, verdict: CheckVerdict) -> PhaseResult:
    if verdict.failure_class is FailureClass.CONFIG_INVALID:
        cause = f"pipeline {pipeline!r}: check `{check}` is not a boolean assertion: {verdict.why}"
        hint = (
            "a check is one read-only SELECT returning one row with one boolean column, e.g. "
            '"select count(*) > 0 from daily_conversions"; fix it in [[tool.staging.pipelines]] '
            "checks"
        )
    else:
        cause = f"pipeline {pipeline!r}: check `{check}` did not hold: {verdict.why}"
        hint = (
            "the pipeline reported success but its data is not what the check expects; "
            "inspect the tables with `staging run --keep-on-failure` and the printed psql line"
        )
    return PhaseResult.failed(
        "checks", Diagnosis(verdict.failure_class, cause, hint=hint, evidence=(check,))
    )


def _sample_notifications(captures: CaptureServer) -> list[str]:
    lines = []
    for item in captures.to_json()[:5]:
        body = item.get("json") or item.get("body") or ""
        lines.append(f"{item.get('name')}: {str(body)[:160]}")
    return lines
