"""`python -m invoicer.worker`."""

from __future__ import annotations

import asyncio
import signal

from temporalio import worker as temporal_worker
from temporalio.client import Client

from invoicer.billing import issue_invoice
from invoicer.config import InvoicerSettings
from invoicer.constants import TASK_QUEUE
from invoicer.workflows import IssueInvoiceWorkflow


async def serve() -> None:
    s = InvoicerSettings()
    client = await Client.connect(s.temporal_host, namespace=s.temporal_namespace)
    done = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, done.set)
    async with temporal_worker.Worker(
        client, task_queue=TASK_QUEUE, workflows=[IssueInvoiceWorkflow], activities=[issue_invoice]
    ):
        await done.wait()


if __name__ == "__main__":
    asyncio.run(serve())
