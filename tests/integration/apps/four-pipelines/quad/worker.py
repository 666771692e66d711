from __future__ import annotations

import asyncio

from temporalio.client import Client
from temporalio.worker import Worker

from quad.settings import Settings
from quad.workflows import Pause


async def main() -> None:
    settings = Settings()
    client = await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)
    await Worker(client, task_queue="quad", workflows=[Pause]).run()


if __name__ == "__main__":
    asyncio.run(main())
