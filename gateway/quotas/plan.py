"""Which counters a request touches: the rules that match its key, team, organization, end user
and model, each turned into counters for the current minute, the current budget period, or the
set of requests in flight."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from gateway.keys.model import KeyInfo
from gateway.quotas.config import Budget, LimitRule
from gateway.quotas.names import qualified

CONCURRENT = "concurrent"
SPEND = "spend"
_MINUTE_TTL_MS = 120_000  # a minute's counter outlives its minute, for settlements that arrive late
_SPEND_KEPT = timedelta(days=40)  # a period's spend stays readable a while after it ends


@dataclass(frozen=True, slots=True)
class Counter:
    key: str
    metric: str
    """``requests``, ``tokens``, ``input_tokens``, ``output_tokens``, ``concurrent`` or ``spend``."""
    limit: int
    ttl_ms: int
    reset_at: float
    """When the window or period ends (epoch seconds); for ``concurrent``, when a retry may help."""
    rule: LimitRule


class RuleIndex:
    """The rules, indexed by what they address, so a request finds its own in a few lookups."""

    def __init__(self, rules: tuple[LimitRule, ...]) -> None:
        self._rules: dict[tuple[str, str], list[LimitRule]] = defaultdict(list)
        for rule in rules:
            self._rules[(rule.scope, rule.name)].append(rule)
        self.needs_tokens = any(r.budget or set(r.per_minute) - {"requests"} for r in rules)
        self.empty = not rules
        self.budgets = tuple(rule for rule in rules if rule.budget is not None)

    def matching(self, key: KeyInfo, user: str | None, model: str | None) -> list[tuple[LimitRule, str]]:
        """(rule, subject) pairs: the subject names the one org, team, key or user the rule counts.
        ``model`` None: the rules for every model."""
        org, every = key.org_name, qualified(key.org_name, "*")  # see gateway.quotas.names
        subjects: list[tuple[str, tuple[str, ...], str]] = [
            ("org", (org, "*"), f"org:{key.org_id}"),
            ("key", (key.prefix, str(key.id), "*", every), f"key:{key.id}"),
        ]
        if key.team_id is not None:
            team = key.team_name or ""
            subjects.append(("team", (team, qualified(org, team), "*", every), f"team:{key.team_id}"))
        if user:
            subjects.append(("user", (user, qualified(org, user), "*", every), f"user:{key.org_id}:{user}"))
        found = []
        for scope, names, subject in subjects:
            for name in names:
                for rule in self._rules.get((scope, name), ()):
                    if rule.model is None or model is None or rule.model == model:
                        found.append((rule, subject))
        return found


class Periods:
    """Budget periods in one time zone, remembered until they end: working out a calendar period
    costs more than the rest of a request's counters together."""

    def __init__(self, zone: ZoneInfo) -> None:
        self._zone = zone
        self._current: dict[str, tuple[str, float]] = {}

    @property
    def zone(self) -> ZoneInfo:
        return self._zone

    def of(self, budget: Budget, now: float) -> tuple[str, float]:
        known = self._current.get(budget.period)
        if known is None or now >= known[1]:
            known = self._current[budget.period] = budget_period(budget, now, self._zone)
        return known


def counters(matched: list[tuple[LimitRule, str]], now: float, periods: Periods, lease_ms: int) -> list[Counter]:
    """The counters of the matched rules. Two rules on one subject, model and name (the file's and
    the admin API's, say) share a counter, which keeps the tighter limit: counted once, never twice."""
    minute = math.floor(now / 60)
    out: dict[str, Counter] = {}
    for rule, subject in matched:
        base = f"gw:q:{subject}:{rule.model or '*'}:{rule.name}"
        found: list[Counter] = [
            Counter(f"{base}:{metric}:m{minute}", metric, limit, _MINUTE_TTL_MS, (minute + 1) * 60, rule)
            for metric, limit in rule.per_minute.items()
        ]
        if rule.concurrent is not None:
            found.append(Counter(f"{base}:{CONCURRENT}", CONCURRENT, rule.concurrent, lease_ms, now + 1, rule))
        if rule.budget is not None:
            period, ends = periods.of(rule.budget, now)
            ttl = round((ends - now + _SPEND_KEPT.total_seconds()) * 1000)
            found.append(Counter(f"{base}:{SPEND}:{period}", SPEND, rule.budget.nano_usd, ttl, ends, rule))
        for counter in found:
            known = out.get(counter.key)
            if known is None or counter.limit < known.limit:
                out[counter.key] = counter
    return list(out.values())


def budget_period(budget: Budget, now: float, zone: ZoneInfo) -> tuple[str, float]:
    """The calendar period ``now`` falls in, in ``zone``: its label and when it ends (epoch seconds)."""
    label, _, end = period_bounds(budget, now, zone)
    return label, end


def period_bounds(budget: Budget, now: float, zone: ZoneInfo) -> tuple[str, float, float]:
    """The calendar period ``now`` falls in, in ``zone``: its label, start and end (epoch seconds)."""
    local = datetime.fromtimestamp(now, zone)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if budget.period == "day":
        start, label = day, day.strftime("d%Y-%m-%d")
        end = _local_midnight(start.date() + timedelta(days=1), zone)
    elif budget.period == "week":  # ISO weeks, Monday first
        start = day - timedelta(days=day.weekday())
        year, week, _ = start.isocalendar()
        label = f"w{year:04d}-{week:02d}"
        end = _local_midnight(start.date() + timedelta(days=7), zone)
    else:
        start, label = day.replace(day=1), day.strftime("m%Y-%m")
        next_month = (start.date().replace(day=28) + timedelta(days=4)).replace(day=1)
        end = _local_midnight(next_month, zone)
    return label, _local_midnight(start.date(), zone).timestamp(), end.timestamp()


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    # Adding days to an aware datetime keeps its UTC offset; rebuilding at midnight gets DST right.
    return datetime(day.year, day.month, day.day, tzinfo=zone)
