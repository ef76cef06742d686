"""Change notices between replicas: after a change commits, its generation number is published on
a Redis channel; every replica subscribed rebuilds its snapshot when it sees a generation newer
than its own. A notice can be missed (Redis restarting, a replica reconnecting), so the builder
also reads the generation from SQL every ``GATEWAY_CHANGE_CHECK_SECONDS`` as the safety net.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

CHANNEL = "gateway:control-changes:db{db}"
"""Per Redis database: Redis pub/sub ignores database numbers, and gateways on other databases
(another deployment, a test run) must not hear these notices."""
_RECONNECT_SECONDS = (0.1, 0.5, 1.0, 2.0)


class Notices:
    """Publishes this process's changes and hears the others'. Without Redis (embedded mode) it
    does nothing: one process has no one to tell, and the CLI's changes arrive by the SQL check."""

    def __init__(self, redis_url: str | None) -> None:
        self._url = redis_url
        self._client = aioredis.Redis.from_url(redis_url, socket_timeout=2.0) if redis_url else None
        db = self._client.connection_pool.connection_kwargs.get("db", 0) if self._client else 0
        self._channel = CHANNEL.format(db=db)
        self._listener: asyncio.Task[None] | None = None
        self.missed_publishes = 0

    @property
    def enabled(self) -> bool:
        return self._client is not None

    async def publish(self, generation: int) -> None:
        if self._client is None:
            return
        try:
            await self._client.publish(self._channel, str(generation))
        except (RedisError, OSError):
            self.missed_publishes += 1  # the others' SQL check brings the change in
            log.warning("change %d committed; its notice could not be published (Redis unreachable)", generation)

    def listen(self, on_generation: Callable[[int], Awaitable[None]]) -> None:
        if self._client is not None and self._listener is None:
            self._listener = asyncio.create_task(self._listen(on_generation), name="change-notices")

    async def _listen(self, on_generation: Callable[[int], Awaitable[None]]) -> None:
        assert self._url is not None
        # Its own connection, without the publisher's read timeout: it waits for notices for hours;
        # the health check still finds a dead connection within its interval.
        subscriber = aioredis.Redis.from_url(self._url, health_check_interval=15, socket_keepalive=True)
        try:
            await self._subscribed(subscriber, on_generation)
        finally:
            await subscriber.aclose()

    async def _subscribed(self, subscriber: aioredis.Redis, on_generation: Callable[[int], Awaitable[None]]) -> None:
        failures = 0
        while True:
            try:
                async with subscriber.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self._channel)
                    failures = 0
                    async for message in pubsub.listen():
                        generation = _generation(message.get("data"))
                        if generation is not None:
                            await on_generation(generation)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away: retry; the SQL check covers the gap
                delay = _RECONNECT_SECONDS[min(failures, len(_RECONNECT_SECONDS) - 1)]
                failures += 1
                if failures == 1:
                    log.warning("change notices interrupted (%s); reconnecting", type(exc).__name__)
                await asyncio.sleep(delay)

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        if self._client is not None:
            await self._client.aclose()


def _generation(data: object) -> int | None:
    try:
        return int(data) if isinstance(data, bytes | str) else None
    except ValueError:
        return None
