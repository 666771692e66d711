"""One file: `python app.py worker` polls, `python app.py start` runs one ping."""

from __future__ import annotations

import asyncio
import signal
import sys
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    import psycopg
    from pydantic import SecretStr
    from pydantic_settings import BaseSettings, SettingsConfigDict

QUEUE = "pings"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    pg_host: str = "localhost"
    pg_port: int = 5432
    pg_user: str = "pinger"
    pg_password: SecretStr = SecretStr("")
    pg_database: str = "pinger"
    temporal_address: str = "localhost:7233"


def label(count: int) -> str:
    return "first ping" if count == 0 else f"ping #{count + 1}"


@activity.defn
async def record_ping() -> str:
    s = Settings()
    async with await psycopg.AsyncConnection.connect(
        host=s.pg_host,
        port=s.pg_port,
        user=s.pg_user,
        password=s.pg_password.get_secret_value(),
        dbname=s.pg_database,
    ) as conn:
        await conn.execute("create table if not exists pings (at timestamptz default now())")
        cur = await conn.execute("select count(*) from pings")
        (count,) = await cur.fetchone() or (0,)
        await conn.execute("insert into pings default values")
    return label(count)


@workflow.defn
class PingWorkflow:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(
            record_ping, start_to_close_timeout=timedelta(seconds=30)
        )


async def worker() -> None:
    client = await Client.connect(Settings().temporal_address)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with Worker(client, task_queue=QUEUE, workflows=[PingWorkflow], activities=[record_ping]):
        await stop.wait()


async def start() -> None:
    client = await Client.connect(Settings().temporal_address)
    print(await client.execute_workflow(PingWorkflow.run, id="ping", task_queue=QUEUE))


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in ("worker", "start"):
        sys.exit("usage: python app.py worker|start")
    asyncio.run(worker() if sys.argv[1] == "worker" else start())
