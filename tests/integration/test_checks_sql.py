"""SQL checks against a real Postgres (process backend): one statement, read-only,
rolled back, judged on exactly one row with one boolean column."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from staging.phases.checks import CheckVerdict, judge_check, read_only_connection
from staging.result import FailureClass
from staging.services.base import PostgresEndpoint, ServiceSpec
from staging.services.connect import open_postgres
from staging.services.password import generate_password
from staging.services.process_backend import ProcessBackend
from staging.services.state import default_base_dir

pytestmark = pytest.mark.process

APP_DATA = """
create table t (id int primary key, amount int not null);
insert into t values (1, 10), (2, 20);
create table audit (note text);
"""


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresEndpoint]:
    """One Postgres for the module, holding the app's table `t` (2 rows)."""
    base = Path(tempfile.mkdtemp(prefix="staging-test-", dir=default_base_dir().parent))
    base.chmod(0o711)  # searchable by `nobody`, who runs Postgres when we are root
    service = ProcessBackend(base).postgres(
        ServiceSpec(run_id=f"t-{uuid.uuid4().hex[:10]}"), generate_password()
    )
    try:
        service.start()
        service.wait_ready(60)
        endpoint = service.endpoint()
        with open_postgres(endpoint, autocommit=True, connect_timeout=10) as conn:
            conn.execute(APP_DATA)
        yield endpoint
    finally:
        service.stop()
        shutil.rmtree(base, ignore_errors=True)


def judge(endpoint: PostgresEndpoint, check: str) -> CheckVerdict:
    with read_only_connection(endpoint) as conn:
        return judge_check(conn, check)


def rows_of_t(endpoint: PostgresEndpoint) -> int:
    with open_postgres(endpoint, autocommit=True, connect_timeout=10) as conn:
        row = conn.execute("select count(*) from t").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize(
    "check", ["select count(*) = 2 from t", "sum(amount) = 30 from t", "select 'a;b' <> '';"]
)
def test_a_true_boolean_row_passes(postgres: PostgresEndpoint, check: str) -> None:
    assert judge(postgres, check) == CheckVerdict(True, True)


def test_select_true_then_drop_neither_passes_nor_drops(postgres: PostgresEndpoint) -> None:
    verdict = judge(postgres, "select true; drop table t")
    assert not verdict.ok and verdict.failure_class is FailureClass.CONFIG_INVALID
    assert "a second statement starts" in verdict.why
    assert rows_of_t(postgres) == 2


def test_select_true_then_select_false_does_not_pass(postgres: PostgresEndpoint) -> None:
    verdict = judge(postgres, "select true; select false")
    assert not verdict.ok and verdict.failure_class is FailureClass.CONFIG_INVALID


@pytest.mark.parametrize(
    ("check", "why"),
    [
        ("select 1", "a column of type int4, not boolean"),
        ("select count(*) from t", "a column of type int8, not boolean"),
        ("select true, true", "2 columns"),
        ("select tru e frm t", "syntax error"),
    ],
)
def test_a_check_that_cannot_be_an_assertion_is_config_invalid(
    postgres: PostgresEndpoint, check: str, why: str
) -> None:
    verdict = judge(postgres, check)
    assert not verdict.ok and verdict.failure_class is FailureClass.CONFIG_INVALID
    assert why in verdict.why


@pytest.mark.parametrize(
    "check",
    [
        "with gone as (delete from t returning 1) select count(*) = 0 from gone",
        "with added as (insert into audit values ('x') returning 1) select count(*) = 1 from added",
    ],
)
def test_a_check_that_writes_is_refused_and_writes_nothing(
    postgres: PostgresEndpoint, check: str
) -> None:
    verdict = judge(postgres, check)
    assert not verdict.ok and verdict.failure_class is FailureClass.CONFIG_INVALID
    assert "read-only transaction" in verdict.why
    assert rows_of_t(postgres) == 2


@pytest.mark.parametrize(
    ("check", "why"),
    [
        ("select false", "it returned False"),
        ("select null::boolean", "it returned None"),
        ("select amount > 0 from t", "it returned several rows"),
        ("select amount > 0 from t where id = 99", "it returned no row"),
        ("select count(*) > 0 from daily_conversions", 'relation "daily_conversions" does not'),
        ("select 1 / (amount - 10) > 0 from t where id = 1", "division by zero"),
    ],
)
def test_data_that_does_not_hold_is_check_failed(
    postgres: PostgresEndpoint, check: str, why: str
) -> None:
    verdict = judge(postgres, check)
    assert not verdict.ok and verdict.failure_class is FailureClass.CHECK_FAILED
    assert why in verdict.why


def test_each_check_is_rolled_back_and_the_connection_stays_usable(
    postgres: PostgresEndpoint,
) -> None:
    with read_only_connection(postgres) as conn:
        first = judge_check(conn, "select set_config('staging.probe', 'seen', true) = 'seen'")
        failed = judge_check(conn, "select 1 / 0 > 0")  # an error aborts the transaction
        after = judge_check(
            conn, "select coalesce(current_setting('staging.probe', true), '') = ''"
        )
        assert conn.info.transaction_status is psycopg.pq.TransactionStatus.IDLE
    assert first.ok and not failed.ok and after.ok


def test_a_connection_lost_during_a_check_gives_a_verdict_not_an_exception(
    postgres: PostgresEndpoint,
) -> None:
    # The runner then asks whether Postgres is gone (services.lost) before blaming the app.
    with read_only_connection(postgres) as conn:
        with open_postgres(postgres, autocommit=True, connect_timeout=10) as admin:
            admin.execute("select pg_terminate_backend(%s)", (conn.info.backend_pid,))
        verdict = judge_check(conn, "select true")
    assert not verdict.ok and verdict.failure_class is FailureClass.CHECK_FAILED
    assert verdict.why.startswith("the query raised: ")
