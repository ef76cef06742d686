"""A change made on one replica holds on the other (issue 9): two ``gateway serve`` processes on
one PostgreSQL and Redis. A key revoked on A is refused by B; a version promoted or rolled back on
A is the one B serves; a limit set or removed on A is in B's snapshot; a backend pointed elsewhere
on A is where B sends. No timing is asserted: B is asked until it shows the change, on a deadline
(30 s) that a loaded machine meets. ``python tests/propagation.py`` measures the delay."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from propagation import FIRST, WAIT_LIMIT, cluster
from test_serve import _run


@pytest.mark.timeout(600)
async def test_a_change_on_one_replica_holds_on_the_other_through_the_notice(tmp_path: Path) -> None:
    """The servers check SQL for changes only hourly: what brings each change to B is the notice."""
    async with cluster(tmp_path) as replicas:
        reader, _ = await replicas.new_key()
        for _ in range(3):
            await replicas.revoke_round()
            await replicas.version_round(reader)
            await replicas.limit_round()
            await replicas.backend_round(reader)
        assert await replicas.served_on_b(reader) == FIRST  # rolled back: version 1 serves
        print(replicas.summary())
    assert {kind: len(delays) for kind, delays in replicas.delays.items()} == {
        "key revoked": 3,
        "version promoted": 3,
        "version rolled back": 3,
        "limit set": 3,
        "limit removed": 3,
        "backend changed": 6,
    }


@pytest.mark.timeout(600)
async def test_a_change_without_a_notice_arrives_by_the_sql_check(tmp_path: Path) -> None:
    """A change from a CLI that has no Redis to tell the replicas (a missed notice) is found by
    the periodic generation check."""
    async with cluster(tmp_path, change_check_seconds=0.5) as replicas:
        secret, key_id = await replicas.new_key()
        no_redis = {k: v for k, v in replicas.env.items() if k != "GATEWAY_REDIS_URL"}
        assert "GATEWAY_REDIS_URL" not in no_redis and os.environ.get("GATEWAY_REDIS_URL") is None
        await _run(no_redis, "keys", "revoke", key_id)
        await _run(no_redis, "models", "promote", "propagated", "2")

        async def arrived() -> bool:
            return await replicas.status_on_b(secret) == 401 and await replicas.served_on_b(reader) != FIRST

        reader, _ = await replicas.new_key()
        deadline = time.monotonic() + WAIT_LIMIT
        while not await arrived():
            assert time.monotonic() < deadline, "the SQL check did not bring the changes to replica B"
            await asyncio.sleep(0.05)
