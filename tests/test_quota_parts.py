"""The quota machinery piece by piece: the counter stores (in-process and Redis) refuse without
changing anything, calendar budget periods, and the quotas file's validation."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from harness import REDIS_URL

from gateway.errors import ConfigError
from gateway.quotas.config import Budget, LimitRule, parse_quota_config
from gateway.quotas.plan import Counter, budget_period, period_bounds
from gateway.quotas.redis_store import RedisStore
from gateway.quotas.resp import RespClient
from gateway.quotas.store import CounterStore, Denied, MemoryStore, Settlement

RULE = LimitRule(scope="key", name="*", per_minute={"requests": 1})


def _counters() -> list[Counter]:
    base = f"gw:q:test:{uuid.uuid4().hex}"
    return [
        Counter(f"{base}:a", "tokens", 10, 120_000, 0.0, RULE),
        Counter(f"{base}:b", "spend", 5, 120_000, 0.0, RULE),
        Counter(f"{base}:c", "concurrent", 1, 60_000, 0.0, RULE),
    ]


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> object:
    if request.param == "memory":
        yield MemoryStore()
        return
    client = RespClient(REDIS_URL)
    yield RedisStore(client, timeout_seconds=2.0)
    await client.aclose()


async def test_a_refusal_changes_nothing_and_settling_adjusts(store: CounterStore) -> None:
    counters, now = _counters(), 1_000_000.0
    with pytest.raises(Denied) as denied:
        await store.reserve(counters, [3, 6, 1], "m0", now)
    assert (denied.value.index, denied.value.used) == (1, 0)
    assert await store.read(counters, now) == [0, 0, 0]
    assert await store.reserve(counters, [3, 2, 1], "m1", now) == [0, 0, 0]
    with pytest.raises(Denied) as denied:
        await store.reserve(counters, [1, 1, 1], "m2", now)  # the one slot in flight is taken
    assert (denied.value.index, denied.value.used) == (2, 1)
    assert await store.read(counters, now) == [3, 2, 1]
    await store.settle([Settlement(counters, [-1, 0, 0], "m1")])
    assert await store.read(counters, now) == [2, 2, 0]
    # A lease whose request never settled (its replica died) lapses when its time is up.
    await store.reserve(counters, [0, 0, 1], "m3", now)
    assert await store.reserve(counters, [0, 0, 1], "m4", now + 61) == [2, 2, 0]


async def test_seeding_raises_a_budget_to_the_ledgers_spend_and_never_adds_to_it(store: CounterStore) -> None:
    counters, now = _counters(), 1_000_000.0
    spend = counters[1]  # limit 5
    await asyncio.gather(store.seed([spend], [4], now), store.seed([spend], [4], now))  # two replicas start
    assert await store.read(counters, now) == [0, 4, 0]
    assert await store.reserve(counters, [0, 1, 0], "after-seed", now) == [0, 4, 0]
    await store.seed([spend], [4], now)  # a restart: the counter holds that spend, and more, already
    assert (await store.read(counters, now))[1] == 5
    await store.seed([spend], [2], now)
    assert (await store.read(counters, now))[1] == 5
    with pytest.raises(Denied):
        await store.reserve(counters, [0, 1, 0], "over", now)


@pytest.mark.parametrize(
    ("period", "at", "label", "ends"),
    [
        ("day", "2026-03-29T12:00", "d2026-03-29", "2026-03-30T00:00+02:00"),  # the day clocks go forward
        ("week", "2026-12-31T23:59", "w2026-53", "2027-01-04T00:00+01:00"),  # ISO week 53, Monday first
        ("month", "2026-02-15T08:00", "m2026-02", "2026-03-01T00:00+01:00"),
        ("month", "2026-12-31T23:30", "m2026-12", "2027-01-01T00:00+01:00"),
    ],
)
def test_budget_periods_are_calendar_periods_in_the_configured_zone(
    period: str, at: str, label: str, ends: str
) -> None:
    zone = ZoneInfo("Europe/Berlin")
    now = datetime.fromisoformat(at).replace(tzinfo=zone).timestamp()
    assert budget_period(Budget(1, period), now, zone) == (label, datetime.fromisoformat(ends).timestamp())


def test_a_budget_period_starts_at_local_midnight() -> None:
    zone = ZoneInfo("Europe/Berlin")
    now = datetime.fromisoformat("2026-03-31T12:00").replace(tzinfo=zone).timestamp()  # summer time since the 29th
    _, start, _ = period_bounds(Budget(1, "month"), now, zone)
    assert start == datetime.fromisoformat("2026-03-01T00:00+01:00").timestamp()


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone: unknown time zone"),
        ({"when_redis_is_down": "maybe"}, "when_redis_is_down: expected 'open' or 'closed'"),
        ({"limits": [{"scope": "galaxy", "requests_per_minute": 1}]}, "limits[0].scope: expected one of"),
        ({"limits": [{"scope": "key"}]}, "limits[0]: sets no limit"),
        ({"limits": [{"scope": "key", "requests_per_minute": 0}]}, "limits[0].requests_per_minute: expected a whole"),
        ({"limits": [{"scope": "key", "budget": {"micro_usd": 5, "period": "year"}}]}, "budget.period"),
        ({"limits": [{"scope": "key", "budget": {"micro_usd": 1.5, "period": "day"}}]}, "budget.micro_usd"),
        ({"limits": [{"scope": "key", "rpm": 5}]}, "limits[0].rpm: unknown field"),
        ({"limit": []}, "limit: unknown field"),
    ],
)
def test_the_quotas_file_is_validated_with_clear_errors(data: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_quota_config(data, "policies/quotas.yaml")
    assert str(caught.value).startswith("policies/quotas.yaml: ") and problem in str(caught.value)


def test_budgets_are_kept_in_nano_usd() -> None:
    config = parse_quota_config(
        {"limits": [{"scope": "team", "name": "ml", "budget": {"micro_usd": 5_000_000, "period": "month"}}]}, "f"
    )
    assert config.limits[0].budget == Budget(nano_usd=5_000_000_000, period="month")


async def test_redis_settlements_apply_once_and_take_backs_only_what_was_reserved() -> None:
    client = RespClient(REDIS_URL)
    store = RedisStore(client, timeout_seconds=2.0)
    try:
        counters, now = _counters(), 1_000_000.0
        await store.reserve(counters, [3, 2, 1], "once", now)
        settlement = Settlement(counters, [-1, 0, 0], "once")
        await store.settle([settlement, settlement])  # a batch retried after its answer was lost
        assert await store.read(counters, now) == [2, 2, 0]
        # The answer to a reservation was lost, so the gateway takes it back: it applies only if
        # Redis did reserve it, and only once.
        await store.reserve(counters, [4, 1, 1], "lost", now)
        take_back = Settlement(counters, [-4, -1, 0], "lost")
        await store.settle([take_back, take_back, Settlement(counters, [-9, -9, 0], "never-reserved")])
        assert await store.read(counters, now) == [2, 2, 0]
    finally:
        await client.aclose()


def test_two_rules_on_one_target_share_a_counter_with_the_tighter_limit() -> None:
    from gateway.keys.model import KeyInfo
    from gateway.quotas.plan import Periods, RuleIndex, counters

    loose = LimitRule(scope="key", name="*", per_minute={"requests": 10})
    tight = LimitRule(scope="key", name="*", per_minute={"requests": 5})  # the same target, set twice
    own = LimitRule(scope="key", name="sk-gw-own", per_minute={"requests": 100})
    key = KeyInfo(uuid.uuid4(), "sk-gw-own", "k", uuid.uuid4(), None, None, None, None, "org")
    matched = RuleIndex((loose, tight, own)).matching(key, None, "m")
    held = counters(matched, 0.0, Periods(ZoneInfo("UTC")), 1000)
    assert sorted(c.limit for c in held) == [5, 100]


async def test_a_refusal_while_failing_open_is_a_429_not_a_500() -> None:
    from gateway.catalog.registry import BackendTarget, ModelRoute, Prices
    from gateway.errors import RateLimited
    from gateway.keys.model import KeyInfo
    from gateway.quotas.service import Quotas
    from gateway.wire.endpoints import CHAT

    config = parse_quota_config({"limits": [{"scope": "key", "requests_per_minute": 1}]}, "f")
    quotas = Quotas(config, "redis://127.0.0.1:9/0", lease_seconds=60)  # nothing listens there
    key = KeyInfo(uuid.uuid4(), "sk-gw-x", "k", uuid.uuid4(), None, None, None, None, "org")
    backend = BackendTarget(uuid.uuid4(), "b", "openai", "http://x", None)
    route = ModelRoute("m", uuid.uuid4(), uuid.uuid4(), 1, backend, "m", {}, Prices(), 0)
    payload = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    assert await quotas.admit(quotas.rules(), "r1", key, route, CHAT, payload) is not None
    with pytest.raises(RateLimited):
        await quotas.admit(quotas.rules(), "r2", key, route, CHAT, payload)
    assert quotas.fail_open_admissions == 2
    await quotas.stop()


def test_estimates_count_tools_earlier_calls_token_ids_and_every_choice() -> None:
    from gateway.catalog.registry import BackendTarget, ModelRoute, Prices
    from gateway.quotas.estimate import estimate
    from gateway.wire.endpoints import CHAT, EMBEDDINGS

    backend = BackendTarget(uuid.uuid4(), "b", "openai", "http://x", None)
    route = ModelRoute("m", uuid.uuid4(), uuid.uuid4(), 1, backend, "m", {}, Prices(), 0)
    schema = {"type": "object", "properties": {f"field_{i}": {"type": "string"} for i in range(40)}}
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": schema}}]
    plain = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}
    assert (
        estimate({**plain, "tools": tools}, CHAT, route, 100).prompt_tokens
        > estimate(plain, CHAT, route, 100).prompt_tokens + 200
    )
    call = {"id": "c", "type": "function", "function": {"name": "lookup", "arguments": "x " * 500}}
    with_call = {**plain, "messages": [*plain["messages"], {"role": "assistant", "tool_calls": [call]}]}
    assert estimate(with_call, CHAT, route, 100).prompt_tokens > 500
    assert estimate({**plain, "n": 3}, CHAT, route, 100).completion_tokens == 30
    assert estimate({"input": [[1, 2, 3], [4, 5]]}, EMBEDDINGS, route, 100).prompt_tokens == 5
