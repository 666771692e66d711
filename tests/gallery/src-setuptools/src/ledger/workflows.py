from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from ledger.activities import post_entry


@workflow.defn
class PostEntryWorkflow:
    @workflow.run
    async def run(self, amount: int = 100) -> int:
        return await workflow.execute_activity(
            post_entry, amount, start_to_close_timeout=timedelta(seconds=30)
        )
