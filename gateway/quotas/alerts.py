"""Soft limits: a budget crossing a threshold (80% of it, say) fires an event once per period.

The event is a warning log line and, when a webhook is configured, a JSON POST retried with
backoff until it is answered 2xx (or the retries run out). Across replicas the event fires once:
the replica that first sets the threshold's marker in Redis (``SET NX``, expiring with the period)
sends it. Events run off the request path.
"""

from __future__ import annotations

import asyncio
import logging
import math
from datetime import UTC, datetime
from typing import Any

import msgspec

from gateway.quotas.config import Alerts
from gateway.quotas.plan import Counter
from gateway.quotas.resp import RespClient
from gateway.upstream.client import Upstream

log = logging.getLogger(__name__)
_BACKOFF_SECONDS = (1.0, 5.0, 25.0, 60.0)
_TIMEOUT_SECONDS = 10.0


class Alerter:
    def __init__(self, alerts: Alerts, upstream: Upstream | None, client: RespClient | None) -> None:
        self._alerts = alerts
        self._upstream = upstream
        self._client = client
        self._fired: dict[str, float] = {}  # marker -> when its period ends (embedded mode)
        self._tasks: set[asyncio.Task[None]] = set()

    def crossed(self, counter: Counter, before: int, after: int, now: float) -> None:
        """``counter`` (a budget) went from ``before`` to ``after``: fire each threshold passed."""
        for threshold in self._alerts.thresholds:
            mark = math.ceil(threshold * counter.limit)
            if before < mark <= after:
                task = asyncio.create_task(self._fire(counter, threshold, after, now))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=2)
            for task in self._tasks:
                task.cancel()

    async def _fire(self, counter: Counter, threshold: float, used: int, now: float) -> None:
        if not await self._first(f"gw:q:alert:{counter.key}:{threshold}", counter, now):
            return  # another replica (or an earlier request) has fired it this period
        rule = counter.rule
        event: dict[str, Any] = {
            "type": "quota.threshold",
            "scope": rule.scope,
            "name": rule.name,
            "model": rule.model,
            "period": rule.budget.period if rule.budget else None,
            "threshold": threshold,
            "limit_nano_usd": counter.limit,
            "used_nano_usd": min(used, counter.limit),
            "period_ends": datetime.fromtimestamp(counter.reset_at, UTC).isoformat(),
            "at": datetime.fromtimestamp(now, UTC).isoformat(),
        }
        log.warning(
            "quota alert: %s budget of %s reached %d%% ($%.6f of $%.6f)",
            event["period"],
            rule.where,
            round(threshold * 100),
            event["used_nano_usd"] / 1e9,
            counter.limit / 1e9,
        )
        if self._alerts.webhook_url and self._upstream is not None:
            await self._post(self._alerts.webhook_url, msgspec.json.encode(event))

    async def _first(self, marker: str, counter: Counter, now: float) -> bool:
        ttl_ms = max(1000, round((counter.reset_at - now) * 1000))
        if self._client is not None:
            try:
                return await self._client.call("SET", marker, 1, "NX", "PX", ttl_ms) is not None
            except Exception:  # Redis away: fall back to this replica's own memory of it
                pass
        if self._fired.get(marker, 0.0) > now:
            return False
        self._fired = {m: ends for m, ends in self._fired.items() if ends > now}
        self._fired[marker] = counter.reset_at
        return True

    async def _post(self, url: str, body: bytes) -> None:
        assert self._upstream is not None
        headers = {"content-type": "application/json", "user-agent": "gateway-quota-alerts"}
        for attempt, pause in enumerate((0.0, *_BACKOFF_SECONDS)):
            await asyncio.sleep(pause)
            try:
                response = await self._upstream.send(url, headers, body, _TIMEOUT_SECONDS)
                await response.aread()
                await response.aclose()
                if response.status_code < 300:
                    return
                problem = f"answered {response.status_code}"
            except Exception as exc:  # unreachable, timed out: retried like a 5xx
                problem = type(exc).__name__
            log.warning("quota alert webhook %s (attempt %d); will retry", problem, attempt + 1)
        log.error("quota alert webhook gave up after %d attempts", len(_BACKOFF_SECONDS) + 1)
