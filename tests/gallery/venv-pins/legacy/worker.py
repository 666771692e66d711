"""`python -m legacy.worker`."""

from __future__ import annotations

import asyncio
import signal
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Worker

from legacy.settings import Settings
from legacy.sync import SyncWorkflow, sync_batch


async def main() -> None:
    settings = Settings()
    client = await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    with ThreadPoolExecutor(2) as pool:
        async with Worker(
            client,
            task_queue=settings.sync_queue,
            workflows=[SyncWorkflow],
            activities=[sync_batch],
            activity_executor=pool,
        ):
            await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
