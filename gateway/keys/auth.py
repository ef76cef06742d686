"""Authenticate a request's key with an in-process cache; SQL is asked only on a miss.

Bound on revocation: a key revoked through this process's admin API stops at once (``forget``);
one revoked elsewhere (the CLI, another replica) stops within ``ttl`` seconds, when its cache
entry expires. Strings not shaped like our keys are refused without a lookup; well-formed unknown
keys are cached too (as unknown), so repeating one does not reach SQL again.

The database being down does not stop known keys: an entry past its TTL whose lookup fails is
served as it was last read (valid, revoked or unknown alike), and for ``retry_seconds`` after a
failure such entries are served without asking SQL, so an outage costs requests no waiting. Only
a key this process has never read needs SQL, and gets 503 while it is down.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime

from gateway.errors import AuthenticationFailed, ServiceUnavailable
from gateway.keys.model import KeyInfo
from gateway.keys.secrets import hash_secret, looks_like_key

Lookup = Callable[[str], Awaitable[KeyInfo | None]]


def presented_key(headers: Mapping[str, str]) -> str:
    """The key from ``Authorization: Bearer`` or ``x-api-key`` (Anthropic SDK style)."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, token = auth.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    key = headers.get("x-api-key")
    if key and key.strip():
        return key.strip()
    raise AuthenticationFailed(
        "You didn't provide an API key. Send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'.",
        code="missing_api_key",
    )


class Authenticator:
    def __init__(
        self,
        lookup: Lookup,
        *,
        ttl_seconds: float,
        max_entries: int,
        clock: Callable[[], float] = time.monotonic,
        retry_seconds: float = 1.0,
    ) -> None:
        self._lookup = lookup
        self._ttl = ttl_seconds
        self._max = max(1, max_entries)
        self._clock = clock
        self._entries: dict[str, tuple[float, KeyInfo | None]] = {}
        self._pending: dict[str, asyncio.Future[KeyInfo | None]] = {}
        self._generation = 0
        self._retry = retry_seconds
        self._down_until = float("-inf")
        self.stale_served = 0
        """Requests answered from an entry past its TTL because SQL could not be asked."""

    async def authenticate(self, headers: Mapping[str, str]) -> KeyInfo:
        secret = presented_key(headers)
        # Anything not shaped like one of our keys is refused without a lookup or a cache slot.
        info = await self._cached(hash_secret(secret)) if looks_like_key(secret) else None
        if info is None:
            raise AuthenticationFailed(f"Incorrect API key provided: {_masked(secret)}.")
        if info.rotated and info.expires_at is not None and info.expires_at <= datetime.now(UTC):
            raise AuthenticationFailed(
                f"The API key {info.prefix}... was rotated; its previous secret stopped working at "
                f"{info.expires_at.isoformat()}.",
                code="rotated_api_key",
            )
        if info.revoked_at is not None:
            raise AuthenticationFailed(f"The API key {info.prefix}... has been revoked.", code="revoked_api_key")
        if info.expires_at is not None and info.expires_at <= datetime.now(UTC):
            raise AuthenticationFailed(
                f"The API key {info.prefix}... expired at {info.expires_at.isoformat()}.",
                code="expired_api_key",
            )
        return info

    def forget(self, key_id: uuid.UUID) -> None:
        """Drop a key from the cache now (after a revocation through this process)."""
        self._generation += 1  # a lookup already in flight must not store what it read before this
        for digest, (_, info) in list(self._entries.items()):
            if info is not None and info.id == key_id:
                del self._entries[digest]

    def refresh(self, keys: Iterable[tuple[str, KeyInfo]]) -> None:
        """Replace entries with what SQL holds now (keys changed elsewhere: a revocation, a rotation)."""
        self._generation += 1  # a lookup already in flight must not store what it read before this
        self.warm(keys)

    def warm(self, keys: Iterable[tuple[str, KeyInfo]]) -> None:
        """Cache keys read in bulk (at start), so that they are known should SQL go away."""
        for digest, info in keys:
            self._store(digest, info)

    async def _cached(self, digest: str) -> KeyInfo | None:
        while True:
            entry = self._entries.get(digest)
            now = self._clock()
            if entry is not None and (entry[0] > now or now < self._down_until):
                if entry[0] <= now:
                    self.stale_served += 1
                return entry[1]
            pending = self._pending.get(digest)
            try:
                if pending is None:
                    return await self._lookup_once(digest)
                return await asyncio.shield(pending)  # another request is already asking SQL for this key
            except _LeaderCancelled:
                continue  # its request went away; ask again, perhaps as the leader
            except ServiceUnavailable:
                if entry is None:
                    raise
                self._down_until = self._clock() + self._retry
                self.stale_served += 1
                # As last read: SQL being down must neither stop a known key nor revive a revoked one.
                return entry[1]

    async def _lookup_once(self, digest: str) -> KeyInfo | None:
        future: asyncio.Future[KeyInfo | None] = asyncio.get_running_loop().create_future()
        self._pending[digest] = future
        generation = self._generation
        try:
            info = await self._lookup(digest)
        except asyncio.CancelledError:
            future.set_exception(_LeaderCancelled())
            future.exception()  # marks it retrieved when nobody is waiting
            raise
        except Exception as exc:
            future.set_exception(ServiceUnavailable("The key store is unavailable; try again shortly."))
            future.exception()
            raise ServiceUnavailable("The key store is unavailable; try again shortly.") from exc
        finally:
            self._pending.pop(digest, None)
        future.set_result(info)
        if generation == self._generation:
            self._store(digest, info)
        return info

    def _store(self, digest: str, info: KeyInfo | None) -> None:
        if len(self._entries) >= self._max:
            # Evict the oldest insertion; dicts keep insertion order.
            self._entries.pop(next(iter(self._entries)))
        self._entries.pop(digest, None)
        self._entries[digest] = (self._clock() + self._ttl, info)


class _LeaderCancelled(Exception):
    """The request doing a shared lookup was cancelled; its waiters should look up again."""


def _masked(secret: str) -> str:
    if len(secret) <= 10:
        return "***"
    return f"{secret[:6]}***{secret[-4:]}"
