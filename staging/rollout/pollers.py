"""Readiness of several worker processes on one task queue: each one's own poller listed.

Temporal's `DescribeTaskQueue` lists pollers by identity, and the SDK's default identity
is `<pid>@<host>`, distinct per process. A count alone would be fooled by a worker that
just stopped: the server keeps listing its poller for about a minute. So each process is
looked for by its pid; a worker with a custom identity is counted among the new
identities instead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from temporalio.client import Client
from temporalio.service import RPCError

from staging.temporal.pollers import task_queue_pollers


@dataclass(frozen=True)
class Polling:
    ready: bool
    task_queue: str
    expected: int
    identities: tuple[str, ...] = ()  # the new processes' pollers seen
    exited: bool = False
    waited: float = 0.0

    def observed(self) -> str:
        if self.exited:
            return f"a worker process exited after {self.waited:.1f}s"
        return (
            f"{len(self.identities)} of {self.expected} worker processes polling task queue "
            f"{self.task_queue!r} after {self.waited:.1f}s"
            + (f" ({', '.join(self.identities)})" if self.identities else "")
        )


def own_pollers(identities: Sequence[str], pids: Sequence[int], stale: Sequence[str]) -> list[str]:
    """The identities that belong to `pids`, or else are new since `stale` was listed."""
    mine = [i for i in identities if any(i.startswith(f"{pid}@") for pid in pids)]
    if len(mine) >= len(pids):
        return mine
    fresh = [i for i in identities if i not in stale and i not in mine]
    return [*mine, *fresh]


async def wait_for_processes(
    client: Client,
    task_queue: str,
    pids: Sequence[int],
    *,
    alive: Callable[[], bool],
    timeout: float,
    stale: Sequence[str] = (),
    interval: float = 0.1,
) -> Polling:
    """Wait until every process of `pids` polls `task_queue`, one exits, or time runs out."""
    start = time.monotonic()
    seen: list[str] = []
    while True:
        waited = time.monotonic() - start
        if not alive():
            return Polling(False, task_queue, len(pids), tuple(seen), exited=True, waited=waited)
        try:
            seen = own_pollers(await task_queue_pollers(client, task_queue), pids, stale)
        except RPCError:
            seen = []
        if len(seen) >= len(pids):
            return Polling(True, task_queue, len(pids), tuple(seen), waited=waited)
        if waited >= timeout:
            return Polling(False, task_queue, len(pids), tuple(seen), waited=waited)
        await asyncio.sleep(interval)
