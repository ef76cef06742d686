"""The load and the tally of ``db_outage.py``: paced chat completions over keep-alive httpx clients,
each outcome tagged with the phase it was sent in, then counted per phase and checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

CHAT_PATH = "/v1/chat/completions"
PHASES = ("setup", "before", "outage", "after")
SAMPLE_ERRORS = 5  # unexpected answers kept verbatim for the report


@dataclass(frozen=True, slots=True)
class Outcome:
    phase: str
    revoked: bool  # sent with a key revoked before the outage
    status: int  # 0: no HTTP answer (connection error, timeout)
    latency_ms: float
    request_id: str | None
    error: str | None = None


def chat_body(model: str) -> bytes:
    body = {"model": model, "messages": [{"role": "user", "content": "Say hello to the outage."}], "max_tokens": 16}
    return json.dumps(body, separators=(",", ":")).encode()


async def send(client: httpx.AsyncClient, key: str, body: bytes, phase: str, revoked: bool) -> Outcome:
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    started = time.perf_counter()
    try:
        response = await client.post(CHAT_PATH, content=body, headers=headers)
    except httpx.HTTPError as exc:
        elapsed = (time.perf_counter() - started) * 1000
        return Outcome(phase, revoked, 0, elapsed, None, f"{type(exc).__name__}: {exc}")
    elapsed = (time.perf_counter() - started) * 1000
    expected = 401 if revoked else 200
    error = None if response.status_code == expected else response.text[:300]
    return Outcome(phase, revoked, response.status_code, elapsed, response.headers.get("x-request-id"), error)


class Load:
    """``concurrency`` clients share one schedule: request ``i`` is due ``i / rate`` seconds after the
    start (sent at once when every client is busy), so the load is the same in every phase however
    slow the answers get. One request in ``revoked_every`` uses a revoked key."""

    def __init__(
        self,
        base_url: str,
        model: str,
        known: Sequence[str],
        revoked: Sequence[str],
        *,
        rate: float,
        concurrency: int,
        revoked_every: int,
        timeout: float,
        max_requests: int,
    ) -> None:
        self._base_url = base_url
        self._body = chat_body(model)
        self._known, self._revoked = list(known), list(revoked)
        self._rate = rate
        self._concurrency = concurrency
        self._revoked_every = revoked_every
        self._timeout = timeout
        self._max = max_requests
        self._issued = 0
        self._stop = asyncio.Event()
        self.phase = "before"
        self.outcomes: list[Outcome] = []

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        start = asyncio.get_running_loop().time()
        async with asyncio.TaskGroup() as group:
            for _ in range(self._concurrency):
                group.create_task(self._client(start))

    async def _client(self, start: float) -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(base_url=self._base_url, timeout=self._timeout, limits=limits) as client:
            while not self._stop.is_set() and self._issued < self._max:
                index = self._issued
                self._issued += 1
                delay = start + index / self._rate - asyncio.get_running_loop().time()
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), delay)
                    if self._stop.is_set():
                        return
                key, revoked = self._key(index)
                self.outcomes.append(await send(client, key, self._body, self.phase, revoked))

    def _key(self, index: int) -> tuple[str, bool]:
        if self._revoked and index % self._revoked_every == self._revoked_every - 1:
            return self._revoked[(index // self._revoked_every) % len(self._revoked)], True
        return self._known[index % len(self._known)], False


# -- the tally -------------------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


@dataclass(slots=True)
class PhaseStats:
    phase: str
    seconds: float
    requests: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    known_503: int = 0
    known_not_200: int = 0
    revoked_requests: int = 0
    revoked_not_401: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0


def status_class(status: int) -> str:
    return str(status) if status in (200, 401, 503) else "other"


def phase_stats(phase: str, seconds: float, outcomes: Iterable[Outcome]) -> PhaseStats:
    mine = [o for o in outcomes if o.phase == phase]
    latencies = [o.latency_ms for o in mine]
    stats = PhaseStats(phase, seconds, requests=len(mine))
    stats.by_status = dict(Counter(status_class(o.status) for o in mine))
    stats.known_503 = sum(1 for o in mine if not o.revoked and o.status == 503)
    stats.known_not_200 = sum(1 for o in mine if not o.revoked and o.status != 200)
    stats.revoked_requests = sum(1 for o in mine if o.revoked)
    stats.revoked_not_401 = sum(1 for o in mine if o.revoked and o.status != 401)
    stats.p50_ms, stats.p99_ms = percentile(latencies, 0.50), percentile(latencies, 0.99)
    stats.max_ms = max(latencies, default=0.0)
    return stats


@dataclass(slots=True)
class LedgerCheck:
    """The usage rows against the request ids the clients were given."""

    ids_given: int
    answers_without_id: int
    rows: int
    missing: list[str]
    doubled: list[str]
    extra: list[str]
    status_mismatch: list[str]
    caught_up_seconds: float  # from the end of the load until every row was there (or the wait ran out)


def check_ledger(outcomes: Sequence[Outcome], rows: Sequence[tuple[str, int]], caught_up: float) -> LedgerCheck:
    given = {o.request_id: o.status for o in outcomes if o.request_id is not None}
    counted = Counter(request_id for request_id, _ in rows)
    statuses = dict(rows)
    return LedgerCheck(
        ids_given=len(given),
        answers_without_id=sum(1 for o in outcomes if o.status and o.request_id is None),
        rows=len(rows),
        missing=sorted(set(given) - set(counted)),
        doubled=sorted(r for r, n in counted.items() if n > 1),
        extra=sorted(set(counted) - set(given)),
        status_mismatch=sorted(r for r, s in given.items() if r in statuses and statuses[r] != s),
        caught_up_seconds=caught_up,
    )


def checks(stats: Sequence[PhaseStats], ledger: LedgerCheck, outcomes: Sequence[Outcome]) -> list[tuple[str, bool]]:
    known_503 = sum(s.known_503 for s in stats)
    known_bad = sum(s.known_not_200 for s in stats)
    revoked = sum(s.revoked_requests for s in stats)
    revoked_bad = sum(s.revoked_not_401 for s in stats)
    given = [o.request_id for o in outcomes if o.request_id is not None]
    repeated = len(given) - len(set(given))
    return [
        (f"known keys: zero 503 ({known_503} seen)", known_503 == 0),
        (f"known keys: every request 200 ({known_bad} were not)", known_bad == 0),
        (f"revoked keys: every request 401 ({revoked_bad} of {revoked} were not)", revoked_bad == 0),
        (f"every answer has a distinct x-request-id ({ledger.answers_without_id} without, {repeated} repeated)",
         ledger.answers_without_id == 0 and repeated == 0),
        (f"usage rows: none lost ({len(ledger.missing)} of {ledger.ids_given} request ids have no row)",
         not ledger.missing),
        (f"usage rows: none doubled ({len(ledger.doubled)} ids with more than one row)", not ledger.doubled),
        (f"usage rows: no extra rows ({len(ledger.extra)} rows for ids no client was given)", not ledger.extra),
        (f"usage rows: status as the client saw it ({len(ledger.status_mismatch)} differ)",
         not ledger.status_mismatch),
    ]  # fmt: skip


def render(stats: Sequence[PhaseStats]) -> str:
    header = ("phase", "seconds", "requests", "req/s", "200", "401", "503", "other", "p50 ms", "p99 ms", "max ms")
    rows: list[tuple[str, ...]] = [header]
    for s in stats:
        seconds, rate = (f"{s.seconds:.1f}", f"{s.requests / s.seconds:.0f}") if s.seconds else ("-", "-")
        counts = [str(s.by_status.get(c, 0)) for c in ("200", "401", "503", "other")]
        latency = [f"{s.p50_ms:.1f}", f"{s.p99_ms:.1f}", f"{s.max_ms:.0f}"]
        rows.append((s.phase, seconds, str(s.requests), rate, *counts, *latency))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(row) for row in rows[1:])])


def error_samples(outcomes: Iterable[Outcome]) -> list[dict[str, Any]]:
    samples: list[dict[str, Any]] = []
    for o in outcomes:
        if o.error is not None and len(samples) < SAMPLE_ERRORS:
            samples.append({"phase": o.phase, "revoked": o.revoked, "status": o.status, "error": o.error})
    return samples
