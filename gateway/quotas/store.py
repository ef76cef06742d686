"""Where quota counters live: one Redis for every replica (``redis_store``), or this process.

A reservation checks every counter it touches and, only if all have room, adds to all of them, in
one atomic step: no other request sees a half-made reservation. A settlement adjusts the counters
by what the request really used, and frees its place among the requests in flight.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway.quotas.plan import CONCURRENT, Counter


class Denied(Exception):
    """Counter ``index`` had no room: it held ``used`` already."""

    def __init__(self, index: int, used: int) -> None:
        super().__init__(index, used)
        self.index = index
        self.used = used


class StoreDown(Exception):
    """The store cannot be reached; the caller decides between failing open and failing closed."""


@dataclass(frozen=True, slots=True)
class Settlement:
    counters: Sequence[Counter]
    deltas: Sequence[int]
    member: str


class CounterStore(Protocol):
    async def reserve(self, counters: Sequence[Counter], amounts: Sequence[int], member: str, now: float) -> list[int]:
        """Each counter's value before this request; raises Denied (nothing changed) or StoreDown."""
        ...

    async def settle(self, batch: Sequence[Settlement]) -> None:
        """For each settlement, add its deltas (what was used minus what was reserved) and release
        its member's leases; raises StoreDown (then none may have been applied)."""
        ...

    async def read(self, counters: Sequence[Counter], now: float) -> list[int]: ...

    async def seed(self, counters: Sequence[Counter], amounts: Sequence[int], now: float) -> None:
        """Raise each sum counter to at least its amount, never adding to it: seeding a counter
        twice, or one that has counted that spend already, changes nothing. Raises StoreDown."""
        ...


class MemoryStore:
    """Counters in this process (embedded mode, and fail-open when Redis is down). Every method
    runs without awaiting, so on the event loop each one is atomic."""

    def __init__(self) -> None:
        self._sums: dict[str, tuple[int, float]] = {}  # key -> (value, expires at)
        self._leases: dict[str, dict[str, float]] = {}  # key -> {member: lease expiry}
        self._operations = 0

    async def reserve(self, counters: Sequence[Counter], amounts: Sequence[int], member: str, now: float) -> list[int]:
        self._sweep(now)
        used = [self._value(counter, now) for counter in counters]
        for index, (counter, amount) in enumerate(zip(counters, amounts, strict=True)):
            if used[index] + amount > counter.limit:
                raise Denied(index, used[index])
        for counter, amount in zip(counters, amounts, strict=True):
            if counter.metric == CONCURRENT:
                self._leases.setdefault(counter.key, {})[member] = now + counter.ttl_ms / 1000
            else:
                value, expires = self._sums.get(counter.key, (0, now + counter.ttl_ms / 1000))
                self._sums[counter.key] = (value + amount, expires)
        return used

    async def settle(self, batch: Sequence[Settlement]) -> None:
        for settlement in batch:
            self.apply(settlement)

    def apply(self, settlement: Settlement) -> None:
        for counter, delta in zip(settlement.counters, settlement.deltas, strict=True):
            if counter.metric == CONCURRENT:
                self._leases.get(counter.key, {}).pop(settlement.member, None)
            elif delta and counter.key in self._sums:
                value, expires = self._sums[counter.key]
                self._sums[counter.key] = (value + delta, expires)

    async def read(self, counters: Sequence[Counter], now: float) -> list[int]:
        return [self._value(counter, now) for counter in counters]

    async def seed(self, counters: Sequence[Counter], amounts: Sequence[int], now: float) -> None:
        for counter, amount in zip(counters, amounts, strict=True):
            if counter.metric == CONCURRENT or self._value(counter, now) >= amount:
                continue
            known = self._sums.get(counter.key)
            expires = known[1] if known is not None and known[1] > now else now + counter.ttl_ms / 1000
            self._sums[counter.key] = (amount, expires)

    def _value(self, counter: Counter, now: float) -> int:
        if counter.metric == CONCURRENT:
            leases = self._leases.get(counter.key, {})
            if len(leases) >= counter.limit:  # full: only now is it worth looking for lapsed leases
                for member in [m for m, expiry in leases.items() if expiry <= now]:
                    del leases[member]  # a request that never settled (a crash) frees its place in time
            return len(leases)
        value, expires = self._sums.get(counter.key, (0, 0.0))
        return value if expires > now else 0

    def _sweep(self, now: float) -> None:
        """Drop expired windows now and then, so memory follows the live counters only."""
        self._operations += 1
        if self._operations % 10_000:
            return
        for key in [k for k, (_, expires) in self._sums.items() if expires <= now]:
            del self._sums[key]
        for key in [k for k, leases in self._leases.items() if not leases]:
            del self._leases[key]
