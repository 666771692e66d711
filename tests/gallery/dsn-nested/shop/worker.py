"""`python -m shop.worker`."""

from __future__ import annotations

import asyncio
import signal
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Worker

from shop.rollup import DailyRollup, roll_up
from shop.settings import ShopSettings


async def main() -> None:
    s = ShopSettings()
    client = await Client.connect(s.temporal.address, namespace=s.temporal.namespace)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    with ThreadPoolExecutor(2) as pool:
        async with Worker(
            client,
            task_queue="rollups",
            workflows=[DailyRollup],
            activities=[roll_up],
            activity_executor=pool,
        ):
            await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
