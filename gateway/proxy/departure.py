"""Stop waiting on a backend for a client that has gone away.

Watching for a disconnect costs a task (it must wait on the client's ASGI ``receive``). Most
answers come back within milliseconds, so the watch starts only once the backend has taken
``WATCH_AFTER`` seconds: a prompt answer pays for a timer and nothing more. When the client then
leaves, the request's own task is cancelled where it waits, so the backend call is dropped and its
cleanup runs as for any cancellation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine
from typing import Any, Protocol, TypeVar

from gateway.errors import ClientDisconnected

_T = TypeVar("_T")
WATCH_AFTER = 0.05
"""Seconds a backend may take before the client is watched; a client that leaves sooner is noticed then."""


class Departing(Protocol):
    def disconnected(self) -> Awaitable[None]:
        """Return once the client has gone away (never, while it stays)."""
        ...


async def unless_client_leaves(client: Departing, work: Coroutine[Any, Any, _T]) -> _T:
    """Await ``work`` in this task; if the client goes away first, cancel it and raise ClientDisconnected."""
    task = asyncio.current_task()
    assert task is not None
    watch = _Watch(task, client)
    timer = asyncio.get_running_loop().call_later(WATCH_AFTER, watch.start)
    try:
        return await work
    except asyncio.CancelledError:
        if not watch.left:
            raise  # cancelled for another reason (shutdown): not ours to turn into an error
        task.uncancel()
        raise ClientDisconnected("The client went away before the backend answered.") from None
    finally:
        watch.finished = True  # from here on the watch must not cancel this task
        timer.cancel()
        watch.stop()


class _Watch:
    def __init__(self, task: asyncio.Task[Any], client: Departing) -> None:
        self._task = task
        self._client = client
        self._watcher: asyncio.Task[None] | None = None
        self.left = False
        self.finished = False

    def start(self) -> None:
        if not self.finished:
            self._watcher = asyncio.ensure_future(self._watch())

    def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()

    async def _watch(self) -> None:
        await self._client.disconnected()
        # Runs between the request task's steps: while it is still inside ``work``, the
        # cancellation lands there (at the await it is suspended on, or the one it resumes at).
        if not self.finished:
            self.left = True
            self._task.cancel()
