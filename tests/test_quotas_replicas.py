"""The promise of issue 4: a limit holds across replicas. Three `gateway serve` processes share one
Redis and one PostgreSQL; many concurrent requests are spread over them; no more succeed than the
limit allows, and the spend PostgreSQL records is exactly the successful requests' cost."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes.fake_upstream import FakeUpstream
from harness import REDIS_URL, models_yaml
from sqlalchemy import func, select, text
from test_serve import _free_port, _run

from gateway.db.engine import create_engine
from gateway.db.models import UsageRecord

DATABASE_URL = os.environ.get(
    "GATEWAY_TEST_REPLICAS_DATABASE_URL", "postgresql+asyncpg://gateway:gateway@127.0.0.1:5432/gateway_replicas"
)
REPLICAS = 3
BUDGET_MICRO_USD = 520  # 20 requests of 26 micro-USD (12 prompt tokens at $1/M, 7 completion at $2/M)
RPM = 50
TPM = 1000  # a request is 12 + 7 = 19 tokens: at most 52 fit
QUOTAS = f"""
limits:
  - {{scope: key, name: "*", model: quota-budget, budget: {{micro_usd: {BUDGET_MICRO_USD}, period: day}}}}
  - {{scope: key, name: "*", model: quota-rpm, requests_per_minute: {RPM}}}
  - {{scope: key, name: "*", model: quota-tpm, tokens_per_minute: {TPM}}}
"""
PROMPT = [{"role": "user", "content": "Say hello"}]


@dataclass
class Cluster:
    ports: list[int]
    env: dict[str, str]

    async def key(self, name: str) -> str:
        return (await _run(self.env, "keys", "create", "--name", name)).splitlines()[0]

    async def fire(self, key: str, model: str, count: int, concurrency: int) -> list[int]:
        """``count`` requests, ``concurrency`` at a time, round-robin over the replicas: their statuses."""
        gate = asyncio.Semaphore(concurrency)
        targets = itertools.cycle(self.ports)
        body: dict[str, Any] = {"model": model, "messages": PROMPT, "max_tokens": 10}
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=concurrency)) as http:

            async def one(port: int) -> int:
                async with gate:
                    url = f"http://127.0.0.1:{port}/v1/chat/completions"
                    response = await http.post(url, json=body, headers={"authorization": f"Bearer {key}"})
                    return response.status_code

            return list(await asyncio.gather(*(one(next(targets)) for _ in range(count))))


@pytest.fixture(scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    tmp = tmp_path_factory.mktemp("replicas")
    engine = create_engine(DATABASE_URL)
    async with engine.begin() as conn:  # a fresh schema: this module's rows only
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()
    async with FakeUpstream(record=False) as upstream:
        (tmp / "models.yaml").write_text(models_yaml(upstream.base_url))
        (tmp / "quotas.yaml").write_text(QUOTAS)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")},
            "GATEWAY_DATABASE_URL": DATABASE_URL,
            "GATEWAY_REDIS_URL": REDIS_URL,
            "GATEWAY_MODELS_FILE": str(tmp / "models.yaml"),
            "GATEWAY_QUOTAS_FILE": str(tmp / "quotas.yaml"),
            "GATEWAY_AUTO_MIGRATE": "false",
        }
        await _run(env, "migrate")
        async with _servers(env, tmp) as ports:
            yield Cluster(ports, env)


@contextlib.asynccontextmanager
async def _servers(env: dict[str, str], tmp: Path) -> AsyncIterator[list[int]]:
    ports = [_free_port() for _ in range(REPLICAS)]
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway",
            "serve",
            "--port",
            str(port),
            env={**env, "GATEWAY_DATA_DIR": str(tmp / f"replica-{port}")},
            cwd=tmp,
        )
        for port in ports
    ]
    try:
        await asyncio.gather(*(_wait_until_healthy(f"http://127.0.0.1:{port}") for port in ports))
        yield ports
    finally:
        for process in processes:
            process.terminate()
        await asyncio.gather(*(asyncio.wait_for(p.wait(), 30) for p in processes))


async def _usage(key_prefix: str, expected_rows: int) -> tuple[int, int, int]:
    """(rows, successful rows, their summed cost) once every replica has flushed its batch."""
    engine = create_engine(DATABASE_URL)
    try:
        for _ in range(100):
            async with engine.connect() as conn:
                query = select(
                    func.count(),
                    func.count().filter(UsageRecord.status_code == 200),
                    func.coalesce(func.sum(UsageRecord.cost_nano_usd).filter(UsageRecord.status_code == 200), 0),
                    func.coalesce(func.sum(UsageRecord.prompt_tokens + UsageRecord.completion_tokens), 0),
                ).where(UsageRecord.key_id == select(text("id FROM api_keys WHERE prefix = :p")).scalar_subquery())
                rows, ok, cost, _ = (await conn.execute(query, {"p": key_prefix})).one()
            if rows >= expected_rows:
                return int(rows), int(ok), int(cost)
            await asyncio.sleep(0.1)
        raise AssertionError(f"only {rows} of {expected_rows} usage rows arrived")
    finally:
        await engine.dispose()


def _prefix(secret: str) -> str:
    from gateway.keys.secrets import visible_prefix

    return visible_prefix(secret)


async def _clear_of_minute_boundary(needed: float = 15.0) -> None:
    into = time.time() % 60
    if into > 60 - needed:
        await asyncio.sleep(60 - into + 0.2)


async def test_a_budget_holds_across_three_replicas(cluster: Cluster) -> None:
    key = await cluster.key("budget")
    statuses = await cluster.fire(key, "quota-budget", count=150, concurrency=40)
    succeeded = statuses.count(200)
    print(f"budget: {succeeded} of 150 succeeded (limit {BUDGET_MICRO_USD // 26})")  # shown with pytest -s
    assert set(statuses) <= {200, 429}
    assert 10 <= succeeded <= BUDGET_MICRO_USD // 26  # never over: the bound is zero
    rows, ok, cost = await _usage(_prefix(key), expected_rows=len(statuses))
    assert (rows, ok) == (150, succeeded)
    assert cost == succeeded * 26_000 <= BUDGET_MICRO_USD * 1000


async def test_requests_per_minute_hold_across_three_replicas(cluster: Cluster) -> None:
    key = await cluster.key("rpm")
    await _clear_of_minute_boundary()
    statuses = await cluster.fire(key, "quota-rpm", count=150, concurrency=50)
    assert statuses.count(200) == RPM and statuses.count(429) == 150 - RPM  # exactly the limit
    rows, ok, _ = await _usage(_prefix(key), expected_rows=150)
    assert (rows, ok) == (150, RPM)


async def test_tokens_per_minute_hold_across_three_replicas(cluster: Cluster) -> None:
    key = await cluster.key("tpm")
    await _clear_of_minute_boundary()
    statuses = await cluster.fire(key, "quota-tpm", count=150, concurrency=30)
    succeeded = statuses.count(200)
    print(f"tokens per minute: {succeeded} of 150 succeeded (limit {TPM // 19})")  # shown with pytest -s
    assert 30 <= succeeded <= TPM // 19
    engine = create_engine(DATABASE_URL)
    await _usage(_prefix(key), expected_rows=150)
    async with engine.connect() as conn:
        tokens = await conn.scalar(
            select(func.sum(UsageRecord.prompt_tokens + UsageRecord.completion_tokens)).where(
                UsageRecord.status_code == 200,
                UsageRecord.key_id == select(text("id FROM api_keys WHERE prefix = :p")).scalar_subquery(),
            ),
            {"p": _prefix(key)},
        )
    await engine.dispose()
    assert tokens == succeeded * 19 <= TPM


async def _wait_until_healthy(base: str, within: float = 180.0) -> None:
    """Until a replica answers, on a deadline a loaded machine meets (start-up loads the tokenizer)."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if (await http.get(base + "/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise AssertionError("gateway serve did not become healthy")
