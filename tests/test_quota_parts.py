"""The quota machinery piece by piece: the counter stores (in-process and Redis) refuse without
changing anything, calendar budget periods, and the quotas file's validation."""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from harness import REDIS_URL

from gateway.errors import ConfigError
from gateway.quotas.config import Budget, LimitRule, parse_quota_config
from gateway.quotas.plan import Counter, budget_period
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
