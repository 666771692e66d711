"""The worker: `python -m everflow.worker`. Polls the task queue until SIGTERM/SIGINT.

Fly.io stops machines with SIGTERM; the worker then stops polling, lets the SDK cancel
in-flight activities and exits 0, so a deploy is not reported as a crash.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import traceback
from concurrent.futures import ThreadPoolExecutor

import structlog
from temporalio.client import Client
from temporalio.worker import Worker

from everflow import activities, logs
from everflow.settings import get_settings
from everflow.workflows import PipelineWorkflow

log = structlog.get_logger("everflow.worker")


async def run() -> None:
    settings = get_settings()
    task_queue = settings.task_queue
    client = await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # Activities are blocking (psycopg, urllib), so they run in threads.
    with ThreadPoolExecutor(max_workers=8) as executor:
        worker = Worker(
            client,
            task_queue=task_queue,
            workflows=[PipelineWorkflow],
            activities=[
                activities.extract,
                activities.transform,
                activities.load,
                activities.notify,
            ],
            activity_executor=executor,
        )
        async with worker:
            log.info(
                "worker.started",
                temporal=settings.temporal_address,
                namespace=settings.temporal_namespace,
                task_queue=task_queue,
                db=settings.describe_db(),
            )
            await stop.wait()
            log.info("worker.stopping")
    log.info("worker.stopped")


def main() -> int:
    logs.configure()
    asyncio.run(run())
    return 0


if __name__ == "__main__":
    try:
        code = main()
    except Exception:
        traceback.print_exc()
        code = 1
    # As in scripts/run_pipeline.py: temporalio's Rust threads can abort interpreter
    # shutdown (SIGABRT, sdk-python issue 300); a clean stop must exit 0, so skip it.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
