"""Quota counters in Redis, shared by every replica: one Lua script reserves (check all, then add
to all, atomically), another settles. One round trip each."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

from gateway.quotas.plan import CONCURRENT, Counter
from gateway.quotas.resp import ConnectionLost, RespClient, RespError
from gateway.quotas.store import Denied, Settlement, StoreDown

_T = TypeVar("_T")

# KEYS: the counters. ARGV: now (ms), member, then per counter: kind (s = sum, c = lease set),
# amount, limit, ttl (ms). Returns {0, used...} when reserved, {index, used} when counter `index`
# (1-based) had no room; then nothing was changed. Sums are added first and taken back on a
# refusal: one call per counter in the common case, where checking first would take two.
_RESERVE = """
local now, member = tonumber(ARGV[1]), ARGV[2]
local n = #KEYS - 1  -- the last key is this reservation's marker
local used, failed = {}, 0
for i = 1, n do
  local at = 2 + (i - 1) * 4
  local kind, amount, limit = ARGV[at + 1], tonumber(ARGV[at + 2]), tonumber(ARGV[at + 3])
  if kind == 'c' then
    local count = redis.call('ZCARD', KEYS[i])
    if count >= limit then  -- full: only now look for leases whose requests never settled
      redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
      count = redis.call('ZCARD', KEYS[i])
    end
    used[i] = count
    if count + 1 > limit then failed = i break end
  else
    local after = redis.call('INCRBY', KEYS[i], amount)
    if after == amount then
      redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[at + 4]))  -- a new counter: its window's life
    end
    used[i] = after - amount
    if after > limit then failed = i break end
  end
end
if failed > 0 then  -- take back what this request added, so a refusal changes nothing
  for j = 1, failed do
    local at = 2 + (j - 1) * 4
    if ARGV[at + 1] ~= 'c' then redis.call('DECRBY', KEYS[j], tonumber(ARGV[at + 2])) end
  end
  return {failed, used[failed]}
end
for i = 1, n do  -- leases last: every counter is known to have room
  local at = 2 + (i - 1) * 4
  if ARGV[at + 1] == 'c' then
    local ttl = tonumber(ARGV[at + 4])
    redis.call('ZADD', KEYS[i], now + ttl, member)
    redis.call('PEXPIRE', KEYS[i], ttl)
  end
end
redis.call('SET', KEYS[#KEYS], '1', 'PX', tonumber(ARGV[3 + n * 4]))  -- settle applies it once
table.insert(used, 1, 0)
return used
"""

# KEYS: the counters, then the reservation's marker. ARGV: member, then per counter: kind, delta.
# Only the first settlement of a reservation that exists applies: a batch retried after a lost
# answer, or a take-back for a reservation that never happened, changes nothing.
_SETTLE = """
if redis.call('DEL', KEYS[#KEYS]) == 0 then
  return 0
end
for i = 1, #KEYS - 1 do
  local kind, delta = ARGV[2 * i], tonumber(ARGV[2 * i + 1])
  if kind == 'c' then
    redis.call('ZREM', KEYS[i], ARGV[1])
  elseif delta ~= 0 and redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('INCRBY', KEYS[i], delta)
  end
end
return 0
"""

# KEYS: the counters. ARGV: now (ms), then per counter: kind.
_READ = """
local out = {}
for i = 1, #KEYS do
  if ARGV[i + 1] == 'c' then
    out[i] = redis.call('ZCOUNT', KEYS[i], '(' .. ARGV[1], '+inf')
  else
    out[i] = tonumber(redis.call('GET', KEYS[i]) or '0')
  end
end
return out
"""

# KEYS: spend counters. ARGV: per counter: amount, ttl (ms). Raises each to at least its amount,
# never adds: a counter seeded twice, or one that already counted this spend, stays as it is.
_SEED = """
for i = 1, #KEYS do
  local amount, ttl = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local raw = redis.call('GET', KEYS[i])
  if not raw then
    redis.call('SET', KEYS[i], amount, 'PX', ttl)
  elseif tonumber(raw) < amount then
    redis.call('INCRBY', KEYS[i], amount - tonumber(raw))
  end
end
return 0
"""
_SEED_BATCH = 500  # counters per script call: one call must not hold Redis for long

_FAILED_OVER = ("READONLY", "MASTERDOWN", "LOADING")


def _marker(member: str) -> str:
    return f"gw:q:r:{member}"


def _kind(counter: Counter) -> str:
    return "c" if counter.metric == CONCURRENT else "s"


class _Script:
    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()


class RedisStore:
    """Counters in Redis, through the quota step's own client (``resp``): one script call each for
    reserving and reading, settlements sent back to back on the same connection."""

    def __init__(self, client: RespClient, timeout_seconds: float, marker_ms: int = 2 * 3_600_000) -> None:
        self._client = client
        self._timeout = timeout_seconds
        self._marker_ms = marker_ms  # a reservation not settled within this is left as reserved
        self._reserve = _Script(_RESERVE)
        self._settle = _Script(_SETTLE)
        self._read = _Script(_READ)
        self._seed = _Script(_SEED)

    async def reserve(self, counters: Sequence[Counter], amounts: Sequence[int], member: str, now: float) -> list[int]:
        args: list[str | int] = [round(now * 1000), member]
        for counter, amount in zip(counters, amounts, strict=True):
            args += [_kind(counter), amount, counter.limit, counter.ttl_ms]
        args.append(self._marker_ms)
        keys = [c.key for c in counters] + [_marker(member)]
        result = await self._timed(self._call(self._reserve, keys, args))
        if result[0] != 0:
            raise Denied(int(result[0]) - 1, int(result[1]))
        return [int(value) for value in result[1:]]

    async def settle(self, batch: Sequence[Settlement]) -> None:
        """Many settlements, pipelined on one connection."""
        calls = []
        for settlement in batch:
            keys: list[str] = []
            args: list[str | int] = [settlement.member]
            for counter, delta in zip(settlement.counters, settlement.deltas, strict=True):
                if delta or counter.metric == CONCURRENT:  # a request counter settles as it was
                    keys.append(counter.key)
                    args += [_kind(counter), delta]
            calls.append(self._call(self._settle, [*keys, _marker(settlement.member)], args))
        await self._timed(asyncio.gather(*calls), scale=4)

    async def read(self, counters: Sequence[Counter], now: float) -> list[int]:
        args: list[str | int] = [round(now * 1000), *(_kind(c) for c in counters)]
        return [int(v) for v in await self._timed(self._call(self._read, [c.key for c in counters], args))]

    async def seed(self, counters: Sequence[Counter], amounts: Sequence[int], now: float) -> None:
        pairs = [(c, a) for c, a in zip(counters, amounts, strict=True) if c.metric != CONCURRENT and a > 0]
        for at in range(0, len(pairs), _SEED_BATCH):
            batch = pairs[at : at + _SEED_BATCH]
            args: list[str | int] = [value for counter, amount in batch for value in (amount, counter.ttl_ms)]
            await self._timed(self._call(self._seed, [c.key for c, _ in batch], args), scale=8)

    async def _call(self, script: _Script, keys: list[str], args: list[str | int]) -> Any:
        try:
            return await self._client.call("EVALSHA", script.sha, len(keys), *keys, *args)
        except RespError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            await self._client.call("SCRIPT", "LOAD", script.source)  # a restarted Redis forgot it
            return await self._client.call("EVALSHA", script.sha, len(keys), *keys, *args)

    async def _timed(self, work: Awaitable[_T], scale: float = 1) -> _T:
        try:
            async with asyncio.timeout(self._timeout * scale):
                return await work
        except (RespError, ConnectionLost, OSError, TimeoutError) as exc:
            if isinstance(exc, TimeoutError) or str(exc).startswith(_FAILED_OVER):
                self._client.drop()  # a stalled or demoted server: the next call connects afresh
            raise StoreDown(type(exc).__name__) from exc
