"""The key cache on its own, with a lookup the test controls (the authenticator takes it as a
dependency): single flight, revocation during a lookup, a cancelled leader, the shape check."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from gateway.errors import AuthenticationFailed, ServiceUnavailable
from gateway.keys.auth import Authenticator
from gateway.keys.model import KeyInfo
from gateway.keys.secrets import new_secret

SECRET = new_secret()
INFO = KeyInfo(uuid.uuid4(), SECRET[:12], "k", uuid.uuid4(), None, None, None, None)


class SlowLookup:
    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()

    async def __call__(self, _digest: str) -> KeyInfo | None:
        self.calls += 1
        await self.release.wait()
        return INFO


def _headers(secret: str = SECRET) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


async def test_concurrent_misses_share_one_lookup() -> None:
    lookup = SlowLookup()
    auth = Authenticator(lookup, ttl_seconds=60, max_entries=10)
    waiting = [asyncio.create_task(auth.authenticate(_headers())) for _ in range(20)]
    await asyncio.sleep(0.01)
    lookup.release.set()
    assert {(await task).id for task in waiting} == {INFO.id}
    assert lookup.calls == 1


async def test_a_revocation_during_a_lookup_is_not_undone_by_it() -> None:
    lookup = SlowLookup()
    auth = Authenticator(lookup, ttl_seconds=60, max_entries=10)
    first = asyncio.create_task(auth.authenticate(_headers()))
    await asyncio.sleep(0.01)
    auth.forget(INFO.id)  # revoked while the lookup above is still reading the old row
    lookup.release.set()
    await first
    await auth.authenticate(_headers())
    assert lookup.calls == 2, "the stale answer must not have been cached"


async def test_waiters_survive_a_cancelled_leader() -> None:
    lookup = SlowLookup()
    auth = Authenticator(lookup, ttl_seconds=60, max_entries=10)
    leader = asyncio.create_task(auth.authenticate(_headers()))
    await asyncio.sleep(0.01)
    follower = asyncio.create_task(auth.authenticate(_headers()))
    await asyncio.sleep(0.01)
    leader.cancel()
    await asyncio.sleep(0.01)
    lookup.release.set()
    assert (await follower).id == INFO.id


async def test_a_failing_key_store_is_503_not_500() -> None:
    async def broken(_digest: str) -> KeyInfo | None:
        raise OSError("database down")

    auth = Authenticator(broken, ttl_seconds=60, max_entries=10)
    with pytest.raises(ServiceUnavailable):
        await auth.authenticate(_headers())


@pytest.mark.parametrize("secret", ["sk-gw-short", "sk-other-" + "a" * 40, SECRET[:-1] + "!", "x" * 5000])
async def test_malformed_keys_never_reach_the_lookup(secret: str) -> None:
    lookup = SlowLookup()
    auth = Authenticator(lookup, ttl_seconds=60, max_entries=10)
    with pytest.raises(AuthenticationFailed):
        await auth.authenticate(_headers(secret))
    assert lookup.calls == 0
