"""`python -m shipping.emails_worker`."""

from __future__ import annotations

import asyncio
import signal
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Worker

from shipping.emails import SendShippedEmail, send_email
from shipping.settings import Settings

EMAILS_QUEUE = "emails"


async def main() -> None:
    s = Settings()
    client = await Client.connect(s.temporal_address, namespace=s.temporal_namespace)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    with ThreadPoolExecutor(2) as pool:
        async with Worker(
            client,
            task_queue=EMAILS_QUEUE,
            workflows=[SendShippedEmail],
            activities=[send_email],
            activity_executor=pool,
        ):
            await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
