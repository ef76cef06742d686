"""Admit a request against every limit it touches, and settle it once it is over.

``admit`` reserves an estimate on all the request's counters in one atomic step (one Redis round
trip in production mode) and raises a 429 when any has no room. ``settle`` replaces the estimate
with what was used: tokens and spend by their real amounts (nothing, for a failed request), the
request's place among those in flight given back. Requests per minute count every admitted
request, failed or not, as OpenAI counts them.

When Redis cannot be reached, ``when_redis_is_down`` decides: ``closed`` answers 503; ``open``
counts in this process instead (the same limits, per replica), logs a warning at most once a
minute, and counts the requests so admitted (``fail_open_admissions``). Redis is tried again one
second later, so recovery needs nothing.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from gateway.catalog.registry import ModelRoute, Prices
from gateway.errors import QuotaExceeded, RateLimited, ServiceUnavailable
from gateway.keys.model import KeyInfo
from gateway.ledger.tokens import count_text
from gateway.quotas.alerts import Alerter
from gateway.quotas.config import LimitRule, QuotaConfig
from gateway.quotas.estimate import estimate_off_loop
from gateway.quotas.plan import CONCURRENT, SPEND, Counter, Periods, RuleIndex, counters
from gateway.quotas.redis_store import RedisStore
from gateway.quotas.resp import RespClient
from gateway.quotas.seed import BudgetTarget, LedgerSpend, target
from gateway.quotas.store import CounterStore, Denied, MemoryStore, Settlement, StoreDown
from gateway.upstream.client import Upstream
from gateway.wire.endpoints import Endpoint
from gateway.wire.usage import Usage

log = logging.getLogger(__name__)
_RETRY_REDIS_AFTER = 1.0
_WARN_EVERY = 60.0
_TOKEN_METRICS = {"tokens", "input_tokens", "output_tokens"}
_BATCH = 100  # packing a batch runs on the event loop: small enough not to stall it
_STOP_SECONDS = 5.0
_MAX_PENDING = 100_000


@dataclass(slots=True)
class Admission:
    """A request's reservation: the counters it holds and what it put on each."""

    member: str
    counters: list[Counter]
    amounts: list[int]
    used: list[int]
    estimate: Usage
    estimated_cost: int
    store: CounterStore
    prices: Prices | None = None
    settled: bool = False
    headers: dict[str, str] = field(default_factory=dict)

    def estimated_cost_of(self, usage: Usage) -> int:
        return self.prices.cost_nano_usd(usage) if self.prices is not None else 0


@dataclass(frozen=True, slots=True)
class LimitUsage:
    """One limit, and how much of it is used now (the admin API's and the CLI's view)."""

    scope: str
    name: str
    model: str | None
    metric: str
    limit: int
    used: int
    remaining: int
    resets_at: str | None
    source: str

    @classmethod
    def of(cls, counter: Counter, used: int, now: float, source: str) -> LimitUsage:
        rule = counter.rule
        resets = None if counter.metric == CONCURRENT else datetime.fromtimestamp(counter.reset_at, UTC).isoformat()
        limit = counter.limit
        return cls(rule.scope, rule.name, rule.model, counter.metric, limit, used, max(limit - used, 0), resets, source)


class Quotas:
    def __init__(
        self,
        config: QuotaConfig,
        redis_url: str | None,
        *,
        lease_seconds: float,
        redis_timeout_seconds: float = 0.25,
        clock: Callable[[], float] = time.time,
        upstream: Upstream | None = None,
    ) -> None:
        # The file's policy (time zone, failure mode, output estimate, alerts). The limits in force
        # come with each call, from the runtime snapshot.
        self._config = config
        self._warming: asyncio.Future[int] | None = None
        self._seeded: set[BudgetTarget] = set()  # budgets started from the ledger's spend
        self._periods = Periods(config.zone)
        self._lease_ms = round(lease_seconds * 1000)
        self._clock = clock
        self._local = MemoryStore()
        self._client = RespClient(redis_url) if redis_url else None
        marker_ms = max(2 * self._lease_ms, 7_200_000)
        self._shared = RedisStore(self._client, redis_timeout_seconds, marker_ms) if self._client else None
        self._alerter = Alerter(config.alerts, upstream, self._client)
        self._redis_down_until = 0.0
        self._warned_at = -_WARN_EVERY
        # Settlements for Redis wait here and go in batches, one round trip each, off the request path.
        self._pending: deque[Settlement] = deque()
        self.settlements_dropped = 0
        self._wakeup = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._closing = False
        self.fail_open_admissions = 0

    async def start(self) -> None:
        if self._shared is not None:
            self._flusher = asyncio.create_task(self._flush_forever(), name="quota-settlements")

    @property
    def settlements_pending(self) -> int:
        return len(self._pending)

    @property
    def file_rules(self) -> tuple[LimitRule, ...]:
        return self._config.limits

    def rules(self, stored: tuple[LimitRule, ...] = ()) -> RuleIndex:
        """The limits in force: the file's, then those set through the API or the CLI."""
        return RuleIndex(self._config.limits + stored)

    async def prepare(self, limits: RuleIndex, ledger: LedgerSpend | None = None) -> None:
        """Get ready to apply ``limits`` before they take effect. The tokenizer takes a second and
        140 MB to load: loaded off the event loop, and only once some limit counts tokens or money
        (not for a gateway without such limits). Budgets new to this process start from what
        ``ledger`` holds for their period (see ``seed``)."""
        if limits.needs_tokens and self._warming is None:
            self._warming = asyncio.ensure_future(asyncio.to_thread(count_text, "warm up"))
        if self._warming is not None:
            await self._warming
        if ledger is not None:
            await self._seed(limits, ledger)

    async def _seed(self, limits: RuleIndex, ledger: LedgerSpend) -> None:
        in_force = {target(rule): rule for rule in limits.budgets}
        self._seeded &= in_force.keys()  # a budget removed, then set again, is seeded again
        store = self._shared or self._local
        for budget, rule in in_force.items():
            if budget in self._seeded:
                continue
            now = self._clock()
            held, spent = await ledger.seeds(rule, now, self._periods, self._lease_ms)
            try:
                await store.seed(held, spent, now)
            except StoreDown:  # not marked: the next rebuild tries again, and seeding twice is harmless
                log.warning("budget of %s not seeded from the ledger yet (Redis unreachable)", rule.where)
                continue
            self._seeded.add(budget)

    def redis_state(self) -> str | None:
        """None without Redis; else "ok", or why quotas are not being counted in Redis right now."""
        if self._shared is None:
            return None
        if self._clock() < self._redis_down_until:
            return f"unreachable (when_redis_is_down: {self._config.when_redis_is_down})"
        return "ok"

    @property
    def fails_closed(self) -> bool:
        return self._config.when_redis_is_down == "closed"

    async def ping_redis(self, seconds: float) -> bool:
        """Whether the quota step's own Redis connection answers now."""
        return self._client is not None and await self._client.ping(seconds)

    async def stop(self) -> None:
        """Write what is pending, within a bound. The flusher is asked to finish rather than
        cancelled: a cancellation landing inside the Redis client can be swallowed there."""
        self._closing = True
        self._wakeup.set()
        if self._flusher is not None:
            await asyncio.wait({self._flusher}, timeout=_STOP_SECONDS)
            if not self._flusher.done():
                self._flusher.cancel()
            self._flusher = None
        if self._pending:
            log.warning("%d quota settlements not written at shutdown (Redis unreachable)", len(self._pending))
        await self._alerter.stop()
        if self._client is not None:
            await self._client.aclose()

    async def admit(
        self,
        limits: RuleIndex,
        request_id: str,
        key: KeyInfo,
        route: ModelRoute,
        endpoint: Endpoint,
        payload: dict[str, Any],
    ) -> Admission | None:
        if limits.empty:
            return None
        user = payload.get("user")
        matched = limits.matching(key, user if isinstance(user, str) else None, route.model)
        if not matched:
            return None
        now = self._clock()
        held = counters(matched, now, self._periods, self._lease_ms)
        needs_usage = any(c.metric in _TOKEN_METRICS or c.metric == SPEND for c in held)
        default_output = self._config.default_output_tokens
        usage = await estimate_off_loop(payload, endpoint, route, default_output) if needs_usage else Usage()
        prices = route.prices_at(datetime.now(UTC)) if route.schedule else route.prices
        cost = _estimated_cost(prices, usage) if needs_usage else 0
        amounts = [_amount(c.metric, usage, cost) for c in held]
        store = self._store(now)
        try:
            try:
                used = await store.reserve(held, amounts, request_id, now)
            except StoreDown:
                if store is self._shared:
                    # Redis may have applied it before the answer was lost: take it back there (a
                    # settlement applies once at most, and only to a reservation that exists).
                    self._queue(Settlement(held, [-amount for amount in amounts], request_id))
                store = self._redis_failed(now)
                used = await store.reserve(held, amounts, request_id, now)
        except Denied as denied:
            counter = held[denied.index]
            if counter.metric == SPEND:  # thresholds the spend itself has passed, not the estimate
                self._alerter.crossed(counter, 0, denied.used, now)
            raise _refusal(held, amounts, denied, now) from None
        for index, counter in enumerate(held):
            if counter.metric == SPEND and amounts[index]:
                self._alerter.crossed(counter, used[index], used[index] + amounts[index], now)
        admission = Admission(request_id, held, amounts, used, usage, cost, store, prices)
        admission.headers = _rate_headers(held, {i: c.limit - used[i] - amounts[i] for i, c in enumerate(held)}, now)
        return admission

    async def usage(self, limits: RuleIndex, key: KeyInfo, user: str | None = None) -> list[LimitUsage]:
        """Where the key stands against every limit of ``limits`` that applies to it (any model), now."""
        now = self._clock()
        index = limits
        held = counters(index.matching(key, user, None), now, self._periods, self._lease_ms)
        store = self._store_for_reading(now)
        try:
            used = await store.read(held, now)
        except StoreDown:
            store, used = self._local, await self._local.read(held, now)
        source = "redis" if store is self._shared else "process"
        return [LimitUsage.of(counter, value, now, source) for counter, value in zip(held, used, strict=True)]

    def _store_for_reading(self, now: float) -> CounterStore:
        if self._shared is None or now < self._redis_down_until:
            return self._local
        return self._shared

    def settle(
        self,
        admission: Admission,
        usage: Usage | None,
        cost: int,
        *,
        failed: bool = False,
        outcome_unknown: bool = False,
    ) -> None:
        """Replace the estimate with what was used: at once in this process, batched for Redis.
        ``failed``: the request failed, and releases its whole reservation, its place among the
        requests of the minute included. ``outcome_unknown``: the backend may have worked on the
        request though no usage came back (the client left, the backend timed out): its prompt is
        charged as estimated."""
        if admission.settled:
            return
        admission.settled = True
        if usage is None and outcome_unknown:
            usage = Usage(prompt_tokens=admission.estimate.prompt_tokens)
            cost = admission.estimated_cost_of(usage)
        real = usage or Usage()
        pairs = zip(admission.counters, admission.amounts, strict=True)
        deltas = [
            -amount if failed and counter.metric == "requests" else _amount(counter.metric, real, cost) - amount
            for counter, amount in pairs
        ]
        settlement = Settlement(admission.counters, deltas, admission.member)
        if admission.store is self._local:
            self._local.apply(settlement)
        else:
            self._queue(settlement)

    def _queue(self, settlement: Settlement) -> None:
        if len(self._pending) >= _MAX_PENDING:  # Redis away for long: the oldest go, their windows end
            self._pending.popleft()
            self.settlements_dropped += 1
        self._pending.append(settlement)
        self._wakeup.set()

    async def _flush_forever(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            flushed = await self._flush()
            if self._closing:
                return
            if not flushed:
                await asyncio.sleep(_RETRY_REDIS_AFTER)  # Redis is away: keep them, try again

    async def _flush(self) -> bool:
        while self._pending and self._shared is not None:
            batch = [self._pending.popleft() for _ in range(min(_BATCH, len(self._pending)))]
            try:
                await self._shared.settle(batch)
            except StoreDown:
                self._pending.extendleft(reversed(batch))
                self._wakeup.set()
                log.warning("%d quota settlements wait for Redis", len(self._pending))
                return False
        return True

    def _store(self, now: float) -> CounterStore:
        if self._shared is None:
            return self._local
        if now < self._redis_down_until:
            return self._down(now)
        return self._shared

    def _redis_failed(self, now: float) -> CounterStore:
        self._redis_down_until = now + _RETRY_REDIS_AFTER
        return self._down(now)

    def _down(self, now: float) -> CounterStore:
        if self._config.when_redis_is_down == "closed":
            raise ServiceUnavailable("Quotas cannot be checked right now (Redis is unreachable); retry shortly.")
        self.fail_open_admissions += 1
        if now - self._warned_at >= _WARN_EVERY:
            self._warned_at = now
            log.warning("Redis unreachable: quotas are counted per replica until it returns (fail-open)")
        return self._local


def _estimated_cost(prices: Prices, usage: Usage) -> int:
    """The estimate's cost, its prompt at the dearer of the input and cache-write prices: a backend
    that writes the prompt to its cache (Anthropic charges 1.25x for that) costs no more than this."""
    return max(
        prices.cost_nano_usd(usage), prices.cost_nano_usd(replace(usage, cache_write_tokens=usage.prompt_tokens))
    )


def _amount(metric: str, usage: Usage, cost: int) -> int:
    if metric == "requests" or metric == CONCURRENT:
        return 1
    if metric == "tokens":
        return usage.prompt_tokens + usage.completion_tokens
    if metric == "input_tokens":
        return usage.prompt_tokens
    if metric == "output_tokens":
        return usage.completion_tokens
    return cost  # spend, in nano-USD


def _refusal(held: list[Counter], amounts: list[int], denied: Denied, now: float) -> RateLimited | QuotaExceeded:
    counter = held[denied.index]
    rule = counter.rule
    wait = max(1, math.ceil(counter.reset_at - now))
    headers = _rate_headers(held, {denied.index: counter.limit - denied.used}, now)
    if counter.metric == SPEND:
        budget = f"{rule.budget.period if rule.budget else ''} budget of {rule.where}"
        if denied.used >= counter.limit:
            return QuotaExceeded(
                f"The {budget} is used up ({_usd(denied.used)} of {_usd(counter.limit)} spent); it renews in {wait} s.",
                headers=headers,
            )
        # Spend is below the budget: it is this request's estimate that does not fit in the rest.
        return QuotaExceeded(
            f"This request's estimated cost ({_usd(amounts[denied.index])}) does not fit in what is left of the "
            f"{budget} ({_usd(counter.limit - denied.used)} of {_usd(counter.limit)} left); lower max_tokens or "
            f"shorten the prompt, or wait until the budget renews in {wait} s.",
            headers=headers,
        )
    what = "concurrent requests" if counter.metric == CONCURRENT else f"{counter.metric.replace('_', ' ')} per minute"
    return RateLimited(
        f"Rate limit reached for {what} on {rule.where}: limit {counter.limit}, in use {denied.used}, "
        f"this request {amounts[denied.index]}. Try again in {wait} s.",
        retry_after=str(wait),
        kind="tokens" if counter.metric in _TOKEN_METRICS else "requests",
        headers=headers,
    )


def _usd(nano: int) -> str:
    return f"${nano / 1e9:.6f}"


def _rate_headers(held: list[Counter], remaining: dict[int, int], now: float) -> dict[str, str]:
    """OpenAI's x-ratelimit-* headers for the tightest per-minute request and token counters among
    those whose remaining room is known."""
    headers: dict[str, str] = {}
    for kind, metrics in (("requests", {"requests"}), ("tokens", _TOKEN_METRICS)):
        known = [(remaining[i], c) for i, c in enumerate(held) if c.metric in metrics and i in remaining]
        if not known:
            continue
        left, counter = min(known, key=lambda pair: pair[0])
        headers[f"x-ratelimit-limit-{kind}"] = str(counter.limit)
        headers[f"x-ratelimit-remaining-{kind}"] = str(max(left, 0))
        headers[f"x-ratelimit-reset-{kind}"] = f"{max(counter.reset_at - now, 0):.3f}s"
    return headers
