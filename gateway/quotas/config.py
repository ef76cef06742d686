"""Read and validate ``policies/quotas.yaml``. Every error names the file, the field and the problem.

```yaml
timezone: Europe/Berlin        # budget periods are calendar days, weeks and months here
when_redis_is_down: open       # open: per-replica limits and a warning; closed: 503
default_output_tokens: 4096    # the output estimate when neither the request nor the version caps it
limits:
  - scope: team                # org, team, key or user (the OpenAI `user` field)
    name: research             # which one; "*" applies to each one separately
    model: gpt-4o              # optional: only requests for this model
    requests_per_minute: 600
    tokens_per_minute: 200000  # or input_tokens_per_minute / output_tokens_per_minute
    concurrent_requests: 20
    budget: {micro_usd: 50000000, period: month}   # $50 a month
```
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.errors import ConfigError
from gateway.yaml_file import read_yaml

SCOPES = ("org", "team", "key", "user")
PERIODS = ("day", "week", "month")
FAILURE_MODES = ("open", "closed")
# A per-minute limit's name in the file -> the metric it counts.
PER_MINUTE = {
    "requests_per_minute": "requests",
    "tokens_per_minute": "tokens",
    "input_tokens_per_minute": "input_tokens",
    "output_tokens_per_minute": "output_tokens",
}
_LIMIT_FIELDS = {"scope", "name", "model", "concurrent_requests", "budget", *PER_MINUTE}
_NAME = re.compile(r"^[^\x00]{1,200}$")


@dataclass(frozen=True, slots=True)
class Budget:
    nano_usd: int
    period: str


@dataclass(frozen=True, slots=True)
class LimitRule:
    """One entry of ``limits``: what it applies to, and its limits (None: not limited)."""

    scope: str
    name: str
    model: str | None = None
    per_minute: dict[str, int] = field(default_factory=dict)
    concurrent: int | None = None
    budget: Budget | None = None

    @property
    def where(self) -> str:
        return f"{self.scope} {self.name}" + (f", model {self.model}" if self.model else "")


@dataclass(frozen=True, slots=True)
class Alerts:
    """Soft limits: a budget crossing one of ``thresholds`` (fractions of it) fires an event once
    per period, as a log line and, when ``webhook_url`` is set, a JSON POST retried until it lands."""

    thresholds: tuple[float, ...] = (0.8, 1.0)
    webhook_url: str | None = None


@dataclass(frozen=True, slots=True)
class QuotaConfig:
    limits: tuple[LimitRule, ...] = ()
    timezone: str = "UTC"
    when_redis_is_down: str = "open"
    default_output_tokens: int = 4096
    alerts: Alerts = Alerts()

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


def load_quota_config(path: str | Path) -> QuotaConfig:
    """The file's limits; no file at all means no limits."""
    path = Path(path)
    if not path.exists():
        return QuotaConfig()
    data = read_yaml(path, "quotas file")
    return parse_quota_config({} if data is None else data, str(path))


def parse_quota_config(data: Any, source: str) -> QuotaConfig:
    def fail(where: str, problem: str) -> ConfigError:
        return ConfigError(f"{source}: {where or '(top level)'}: {problem}")

    if not isinstance(data, dict):
        raise fail("", f"expected a mapping, got {type(data).__name__}")
    allowed = {"timezone", "when_redis_is_down", "default_output_tokens", "limits", "alerts"}
    extra = sorted(set(data) - allowed)
    if extra:
        raise fail(extra[0], f"unknown field; allowed: {', '.join(sorted(allowed))}")
    timezone = data.get("timezone", "UTC")
    try:
        zoneinfo.ZoneInfo(str(timezone))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise fail("timezone", f"unknown time zone {timezone!r} (use an IANA name such as Europe/Berlin)") from None
    mode = data.get("when_redis_is_down", "open")
    if mode not in FAILURE_MODES:
        raise fail("when_redis_is_down", f"expected 'open' or 'closed', got {mode!r}")
    default_output = _whole(data.get("default_output_tokens", 4096), "default_output_tokens", fail)
    entries = data.get("limits") or []
    if not isinstance(entries, list):
        raise fail("limits", "expected a list of limits")
    rules = tuple(parse_rule(entry, f"limits[{i}]", fail) for i, entry in enumerate(entries))
    return QuotaConfig(rules, str(timezone), str(mode), default_output, _alerts(data.get("alerts"), fail))


def _alerts(value: Any, fail: Any) -> Alerts:
    if value is None:
        return Alerts()
    if not isinstance(value, dict) or set(value) - {"thresholds", "webhook_url"}:
        raise fail("alerts", "expected {thresholds: [0.8, 1.0], webhook_url: https://...}")
    thresholds = value.get("thresholds", [0.8, 1.0])
    valid = isinstance(thresholds, list) and all(
        isinstance(t, int | float) and not isinstance(t, bool) and 0 < t <= 1 for t in thresholds
    )
    if not valid or not thresholds:
        raise fail("alerts.thresholds", "expected a list of fractions of a budget, each above 0 and at most 1")
    url = value.get("webhook_url")
    if url is not None and (not isinstance(url, str) or not re.match(r"^https?://[^/\s]+", url)):
        raise fail("alerts.webhook_url", f"expected an http(s) URL, got {url!r}")
    return Alerts(tuple(sorted(float(t) for t in thresholds)), url)


def parse_rule(entry: Any, where: str, fail: Any) -> LimitRule:
    """One limit, from the file or the admin API; ``fail(where, problem)`` makes the error to raise."""
    if not isinstance(entry, dict):
        raise fail(where, "expected a mapping")
    extra = sorted(set(entry) - _LIMIT_FIELDS)
    if extra:
        raise fail(f"{where}.{extra[0]}", f"unknown field; allowed: {', '.join(sorted(_LIMIT_FIELDS))}")
    scope = entry.get("scope")
    if scope not in SCOPES:
        raise fail(f"{where}.scope", f"expected one of {', '.join(SCOPES)}, got {scope!r}")
    name = entry.get("name", "*")
    if not isinstance(name, str) or not _NAME.match(name):
        raise fail(f"{where}.name", "expected a name (at most 200 characters) or '*'")
    model = entry.get("model")
    if model is not None and (not isinstance(model, str) or not _NAME.match(model)):
        raise fail(f"{where}.model", "expected a model name")
    per_minute = {
        metric: _whole(entry[key], f"{where}.{key}", fail, minimum=1)
        for key, metric in PER_MINUTE.items()
        if entry.get(key) is not None
    }
    concurrent = entry.get("concurrent_requests")
    rule = LimitRule(
        scope=scope,
        name=name,
        model=model,
        per_minute=per_minute,
        concurrent=_whole(concurrent, f"{where}.concurrent_requests", fail, minimum=1)
        if concurrent is not None
        else None,
        budget=_budget(entry.get("budget"), f"{where}.budget", fail),
    )
    if not (rule.per_minute or rule.concurrent or rule.budget):
        raise fail(where, "sets no limit: give requests_per_minute, tokens_per_minute, concurrent_requests or budget")
    return rule


def _budget(value: Any, where: str, fail: Any) -> Budget | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"micro_usd", "period"}:
        raise fail(where, "expected {micro_usd: <whole micro-USD>, period: day|week|month}")
    period = value.get("period")
    if period not in PERIODS:
        raise fail(f"{where}.period", f"expected one of {', '.join(PERIODS)}, got {period!r}")
    micro = _whole(value.get("micro_usd"), f"{where}.micro_usd", fail)
    return Budget(nano_usd=micro * 1000, period=period)


def _whole(value: Any, where: str, fail: Any, minimum: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise fail(where, f"expected a whole number >= {minimum}, got {value!r}")
    return value
