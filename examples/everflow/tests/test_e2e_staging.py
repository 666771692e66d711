"""everflow end to end on staging's pytest fixtures: the real worker, settings and database.

These start the staging services (the same backend and selection as `staging run`) once
per pytest session; without Docker or the process backend's binaries they are skipped.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import psycopg
from everflow.workflows import PipelineWorkflow


def test_the_migrated_schema_is_in_a_fresh_database(postgres_url):
    with psycopg.connect(postgres_url) as conn:
        (count,) = conn.execute("select count(*) from daily_conversions").fetchone()
    assert count == 0


def test_each_test_gets_its_own_database(postgres_url):
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            "insert into daily_conversions (day, offer_id, conversions, revenue, payout) "
            "values ('2024-05-01', 1, 1, 1, 1)"
        )
        (count,) = conn.execute("select count(*) from daily_conversions").fetchone()
    assert count == 1


def test_settings_come_from_the_dotenv_file(staging_settings, staging_services):
    assert staging_settings.source("db_password") == "dotenv"
    assert staging_settings["db_password"] == "***"  # secrets never leave the probe
    assert staging_settings["db_host"] == staging_services.postgres.host


def test_the_pipeline_runs_on_the_real_worker(staging_worker, temporal_client, captured):
    async def run() -> dict:
        return await temporal_client.execute_workflow(
            PipelineWorkflow.run,
            "everflow",
            id=f"e2e-{uuid.uuid4().hex[:8]}",
            task_queue=staging_worker.task_queue,
            execution_timeout=timedelta(seconds=60),
        )

    result = asyncio.run(run())
    assert result["rows_written"] > 0
    assert captured.count() == 0, captured.requests()


def test_a_whole_staging_run_passes(staging_run):
    verdict = staging_run()
    assert verdict.passed, (verdict.failure_class, verdict.cause)
    assert verdict.phases["checks"].status == "passed"
