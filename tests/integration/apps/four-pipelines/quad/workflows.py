from __future__ import annotations

import asyncio

from temporalio import workflow


@workflow.defn
class Pause:
    @workflow.run
    async def run(self, seconds: float) -> str:
        await asyncio.sleep(seconds)  # a durable timer in a workflow
        return f"paused {seconds}s"
