"""Quote a batch of SKUs, one activity each."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pricecache.activities import quote_item


@workflow.defn
class QuoteBatchWorkflow:
    @workflow.run
    async def run(self, skus: list[str]) -> int:
        total = 0
        for sku in skus:
            total += await workflow.execute_activity(
                quote_item, sku, start_to_close_timeout=timedelta(seconds=30)
            )
        return total
