"""A tiny Temporal + Postgres app whose task queue is a setting (`TASK_QUEUE`).

`python tally.py worker` polls the queue; `python tally.py start` runs one `Tally` (an
activity inserts a row and returns what it saw); `python tally.py hold` starts a `Hold`
that waits for a signal that never comes (a run to SIGKILL mid-pipeline).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    import psycopg
    from pydantic import SecretStr
    from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: SecretStr = SecretStr("")
    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    task_queue: str = "tally"


@activity.defn
async def record() -> str:
    """Insert this task's queue into the run's database; `db|queue|rows` as seen then."""
    queue = activity.info().task_queue
    url = Settings().database_url.get_secret_value()
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await conn.execute("create table if not exists tally (queue text not null)")
        await conn.execute("insert into tally (queue) values (%s)", (queue,))
        cur = await conn.execute("select current_database(), count(*) from tally")
        database, rows = await cur.fetchone() or ("?", 0)
    return f"{database}|{queue}|{rows}"


@workflow.defn
class Tally:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(record, start_to_close_timeout=timedelta(seconds=30))


@workflow.defn
class Hold:
    def __init__(self) -> None:
        self._released = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self._released)

    @workflow.signal
    def release(self) -> None:
        self._released = True


async def _client(s: Settings) -> Client:
    return await Client.connect(s.temporal_address, namespace=s.temporal_namespace)


async def worker() -> None:
    s = Settings()
    client = await _client(s)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with Worker(
        client, task_queue=s.task_queue, workflows=[Tally, Hold], activities=[record]
    ):
        await stop.wait()


async def start() -> None:
    s = Settings()
    client = await _client(s)
    print(
        await client.execute_workflow(
            Tally.run, id=f"tally-{uuid.uuid4()}", task_queue=s.task_queue
        )
    )


async def hold() -> None:
    s = Settings()
    client = await _client(s)
    handle = await client.start_workflow(
        Hold.run, id=f"hold-{uuid.uuid4()}", task_queue=s.task_queue
    )
    print(f"holding {handle.id}", flush=True)
    await handle.result()


if __name__ == "__main__":
    commands = {"worker": worker, "start": start, "hold": hold}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        sys.exit("usage: python tally.py worker|start|hold")
    asyncio.run(commands[sys.argv[1]]())
    # temporalio's Rust threads can crash interpreter finalization (sdk-python#300).
    sys.stdout.flush()
    os._exit(0)
