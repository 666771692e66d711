"""`python -m reports.worker` from services/reports."""

from __future__ import annotations

import asyncio
import signal
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Worker

from reports.nightly import NightlyReport, write_report
from reports.settings import Settings


async def main() -> None:
    settings = Settings()
    client = await Client.connect(settings.temporal_target)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    with ThreadPoolExecutor(2) as pool:
        async with Worker(
            client,
            task_queue=settings.report_queue,
            workflows=[NightlyReport],
            activities=[write_report],
            activity_executor=pool,
        ):
            await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
