"""Cancel work whose caller went away (asyncio: aiohttp, our upstream client, runs on nothing else)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from starlette.types import Receive

T = TypeVar("T")


class ClientDisconnected(Exception):
    """The caller went away before the answer was ready."""


async def unless_disconnected(receive: Receive, work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work``; if the client disconnects first, cancel it (and whatever upstream call it made)."""
    # ``work`` runs in the caller's own task and only the watcher is a new one: it cancels the
    # caller's task, at a third of the cost of a task-group race per request.
    task = asyncio.current_task()
    assert task is not None  # always inside a task on a running loop
    disconnected = False

    async def watch() -> None:
        nonlocal disconnected
        while (await receive())["type"] != "http.disconnect":
            pass
        disconnected = True
        task.cancel()

    watcher = asyncio.ensure_future(watch())
    try:
        return await work()
    except asyncio.CancelledError:
        if disconnected and task.uncancel() == 0:
            raise ClientDisconnected() from None
        raise
    finally:
        watcher.cancel()
