from __future__ import annotations

from datetime import timedelta

import psycopg
from temporalio import activity, workflow

from legacy.settings import Settings


def batch_name(n: int) -> str:
    return f"batch-{n:03d}"


@activity.defn
def sync_batch(n: int) -> str:
    s = Settings()
    with psycopg.connect(
        host=s.db_host,
        port=s.db_port,
        user=s.db_user,
        password=s.db_password.get_secret_value(),
        dbname=s.db_name,
    ) as conn:
        conn.execute("create table if not exists batches (name text)")
        conn.execute("insert into batches values (%s)", (batch_name(n),))
    return f"{batch_name(n)} on psycopg {psycopg.__version__}"


@workflow.defn(sandboxed=False)
class SyncWorkflow:
    @workflow.run
    async def run(self, n: int = 1) -> str:
        return await workflow.execute_activity(
            sync_batch, n, start_to_close_timeout=timedelta(seconds=30)
        )
