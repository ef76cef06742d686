"""Measure the quota step alone: what admitting and settling one request adds to the request path.

Every scope is checked: rules on the organization, the team, the key, the end user and the model,
with requests and tokens per minute, concurrency and a monthly budget, so a request touches 14
counters. Admission runs exactly as on the request path (rule matching, the prompt's token count,
the one Redis round trip), settlement as it does after the response.

Usage: python tests/bench/quota_step.py [--redis-url redis://127.0.0.1:6379/0] [--requests 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid

from gateway.catalog.registry import BackendTarget, ModelRoute, Prices
from gateway.keys.model import KeyInfo
from gateway.quotas.config import parse_quota_config
from gateway.quotas.service import Quotas
from gateway.wire.endpoints import CHAT

RULES = """
limits:
  - {scope: org, name: bench-org, requests_per_minute: 100000000, tokens_per_minute: 1000000000000,
     concurrent_requests: 100000, budget: {micro_usd: 1000000000000, period: month}}
  - {scope: team, name: bench-team, requests_per_minute: 100000000, tokens_per_minute: 1000000000000,
     budget: {micro_usd: 1000000000000, period: day}}
  - {scope: key, name: "*", requests_per_minute: 100000000, tokens_per_minute: 1000000000000,
     concurrent_requests: 100000}
  - {scope: user, name: "*", requests_per_minute: 100000000, input_tokens_per_minute: 1000000000000}
  - {scope: key, name: "*", model: bench-model, requests_per_minute: 100000000, output_tokens_per_minute: 1000000000000,
     budget: {micro_usd: 1000000000000, period: week}}
"""
PAYLOAD = {
    "model": "bench-model",
    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello to the bench."}],
    "max_tokens": 50,
    "user": "bench-user",
}


def _route() -> ModelRoute:
    backend = BackendTarget(uuid.uuid4(), "fake", "openai", "http://127.0.0.1:9/v1", None)
    prices = Prices(input=150_000, output=600_000)
    return ModelRoute("bench-model", uuid.uuid4(), uuid.uuid4(), 1, backend, "bench-model", {}, prices, 0)


def _key() -> KeyInfo:
    return KeyInfo(
        uuid.uuid4(), "sk-gw-bench", "bench", uuid.uuid4(), uuid.uuid4(), None, None, None, "bench-org", "bench-team"
    )


async def _measure(quotas: Quotas, requests: int, concurrency: int) -> list[float]:
    key, route, limits = _key(), _route(), quotas.rules()
    latencies: list[float] = []
    counter = iter(range(requests))

    async def worker() -> None:
        for i in counter:
            started = time.perf_counter()
            admission = await quotas.admit(limits, f"req-{i}", key, route, CHAT, PAYLOAD)
            latencies.append(time.perf_counter() - started)
            assert admission is not None
            quotas.settle(admission, None, 0)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    await quotas.stop()
    return latencies


def _report(label: str, latencies: list[float]) -> None:
    ms = sorted(x * 1000 for x in latencies)
    p = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]  # noqa: E731
    print(f"{label:<34} n={len(ms):>6}  p50 {p(0.50):.3f} ms  p99 {p(0.99):.3f} ms  mean {statistics.fmean(ms):.3f} ms")


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--requests", type=int, default=20_000)
    args = parser.parse_args(argv)
    config = parse_quota_config(__import__("yaml").safe_load(RULES), "bench rules")
    for label, client in (
        ("embedded (in-process counters)", None),
        ("production (Redis, one round trip)", args.redis_url),
    ):
        for concurrency in (1, 64):
            quotas = Quotas(config, client, lease_seconds=600)
            await quotas.start()
            await _measure(quotas, 500, concurrency)  # warm up: scripts loaded, tokenizer warm
            quotas = Quotas(config, client, lease_seconds=600)
            await quotas.start()
            _report(f"{label}, concurrency {concurrency}", await _measure(quotas, args.requests, concurrency))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
