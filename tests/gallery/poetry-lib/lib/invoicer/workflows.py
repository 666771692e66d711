from __future__ import annotations

from datetime import timedelta

from temporalio import workflow


@workflow.defn(name="IssueInvoice")
class IssueInvoiceWorkflow:
    @workflow.run
    async def run(self, customer: str) -> str:
        return await workflow.execute_activity(
            "issue_invoice", customer, start_to_close_timeout=timedelta(seconds=30)
        )
