"""Coroutines run to completion from synchronous code: a loop of their own on a thread of
their own, so a caller inside a running loop (or a signal handler interrupting one) can
wait for them."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def in_thread(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine on its own loop in its own thread: callers may be inside a loop, or a
    signal handler interrupting one."""
    box: dict[str, object] = {}

    def main() -> None:
        try:
            box["value"] = asyncio.run(_await(make))
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=main, name="staging-attach", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


async def _await(make: Callable[[], Awaitable[T]]) -> T:
    return await make()
