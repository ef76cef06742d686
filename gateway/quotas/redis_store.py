"""Quota counters in Redis, shared by every replica: one Lua script reserves (check all, then add
to all, atomically), another settles. One round trip each."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.quotas.plan import CONCURRENT, Counter
from gateway.quotas.store import Denied, StoreDown

# KEYS: the counters. ARGV: now (ms), member, then per counter: kind (s = sum, c = lease set),
# amount, limit, ttl (ms). Returns {0, used...} when reserved, {index, used} when counter `index`
# (1-based) had no room; then nothing was changed.
_RESERVE = """
local now = tonumber(ARGV[1])
local member = ARGV[2]
local used = {}
for i = 1, #KEYS do
  local at = 2 + (i - 1) * 4
  local kind, amount, limit = ARGV[at + 1], tonumber(ARGV[at + 2]), tonumber(ARGV[at + 3])
  local current
  if kind == 'c' then
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
    current = redis.call('ZCARD', KEYS[i])
  else
    current = tonumber(redis.call('GET', KEYS[i]) or '0')
  end
  if current + amount > limit then
    return {i, current}
  end
  used[i] = current
end
for i = 1, #KEYS do
  local at = 2 + (i - 1) * 4
  local kind, amount, ttl = ARGV[at + 1], tonumber(ARGV[at + 2]), tonumber(ARGV[at + 4])
  if kind == 'c' then
    redis.call('ZADD', KEYS[i], now + ttl, member)
    redis.call('PEXPIRE', KEYS[i], ttl)
  else
    redis.call('INCRBY', KEYS[i], amount)
    if redis.call('PTTL', KEYS[i]) < 0 then
      redis.call('PEXPIRE', KEYS[i], ttl)
    end
  end
end
table.insert(used, 1, 0)
return used
"""

# KEYS: the counters. ARGV: member, then per counter: kind, delta.
_SETTLE = """
for i = 1, #KEYS do
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


def _kind(counter: Counter) -> str:
    return "c" if counter.metric == CONCURRENT else "s"


class RedisStore:
    def __init__(self, redis: Redis, timeout_seconds: float) -> None:
        self._redis = redis
        self._timeout = timeout_seconds
        self._reserve = redis.register_script(_RESERVE)
        self._settle = redis.register_script(_SETTLE)
        self._read = redis.register_script(_READ)

    async def reserve(self, counters: Sequence[Counter], amounts: Sequence[int], member: str, now: float) -> list[int]:
        args: list[str | int] = [round(now * 1000), member]
        for counter, amount in zip(counters, amounts, strict=True):
            args += [_kind(counter), amount, counter.limit, counter.ttl_ms]
        result = await self._call(self._reserve, [c.key for c in counters], args)
        if result[0] != 0:
            raise Denied(int(result[0]) - 1, int(result[1]))
        return [int(value) for value in result[1:]]

    async def settle(self, counters: Sequence[Counter], deltas: Sequence[int], member: str) -> None:
        args: list[str | int] = [member]
        for counter, delta in zip(counters, deltas, strict=True):
            args += [_kind(counter), delta]
        await self._call(self._settle, [c.key for c in counters], args)

    async def read(self, counters: Sequence[Counter], now: float) -> list[int]:
        args: list[str | int] = [round(now * 1000), *(_kind(c) for c in counters)]
        return [int(v) for v in await self._call(self._read, [c.key for c in counters], args)]

    async def _call(self, script: object, keys: list[str], args: list[str | int]) -> list[int]:
        try:
            async with asyncio.timeout(self._timeout):
                return await script(keys=keys, args=args)  # type: ignore[operator,no-any-return]
        except (RedisError, OSError, TimeoutError) as exc:
            raise StoreDown(type(exc).__name__) from exc
