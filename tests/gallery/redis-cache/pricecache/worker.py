"""`python -m pricecache.worker`: polls the `pricing` task queue until SIGTERM."""

from __future__ import annotations

import asyncio
import signal

from temporalio.client import Client
from temporalio.worker import Worker

from pricecache.activities import quote_item
from pricecache.settings import Settings
from pricecache.workflows import QuoteBatchWorkflow

TASK_QUEUE = "pricing"


async def main() -> None:
    settings = Settings()
    client = await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with Worker(
        client, task_queue=TASK_QUEUE, workflows=[QuoteBatchWorkflow], activities=[quote_item]
    ):
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
