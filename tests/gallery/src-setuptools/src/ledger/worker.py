"""`python -m ledger.worker`: poll until SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Worker

from ledger.activities import post_entry
from ledger.settings import Settings
from ledger.workflows import PostEntryWorkflow


async def main() -> None:
    settings = Settings()
    client = await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    with ThreadPoolExecutor(4) as pool:
        async with Worker(
            client,
            task_queue=settings.task_queue,
            workflows=[PostEntryWorkflow],
            activities=[post_entry],
            activity_executor=pool,
        ):
            await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
