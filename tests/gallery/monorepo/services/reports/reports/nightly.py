from __future__ import annotations

from datetime import timedelta

import psycopg
from temporalio import activity, workflow

from reports.settings import Settings


def title(name: str) -> str:
    return name.replace("-", " ").title()


@activity.defn
def write_report(name: str) -> str:
    with psycopg.connect(**Settings().connect()) as conn:  # type: ignore[arg-type]
        conn.execute("insert into reports values (%s, 1)", (title(name),))
    return title(name)


@workflow.defn(sandboxed=False)
class NightlyReport:
    @workflow.run
    async def run(self, name: str = "nightly-sales") -> str:
        return await workflow.execute_activity(
            write_report, name, start_to_close_timeout=timedelta(seconds=30)
        )
