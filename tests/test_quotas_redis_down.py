"""Redis stopped under load, then started again: fail-open keeps answering (counting per replica,
with a warning and a count of such admissions), fail-closed answers 503 in OpenAI's shape; neither
gives a 500 or hangs, and both go back to Redis by themselves once it returns."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from harness import Gateway, running_gateway
from redis.asyncio import Redis
from test_serve import _free_port

PROMPT = [{"role": "user", "content": "Say hello"}]


class PrivateRedis:
    """A redis-server of this test's own, on its own port, that the test may stop and start."""

    def __init__(self) -> None:
        self.port = _free_port()
        self._process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self._process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        client = Redis.from_url(self.url)
        try:
            for _ in range(100):
                with contextlib.suppress(Exception):
                    if await client.ping():
                        return
                await asyncio.sleep(0.05)
            raise AssertionError("redis-server did not start")
        finally:
            await client.aclose()

    async def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            await asyncio.wait_for(self._process.wait(), 10)
            self._process = None

    async def quota_keys(self) -> list[bytes]:
        client = Redis.from_url(self.url)
        try:
            return list(await client.keys("gw:q:*"))
        finally:
            await client.aclose()


@contextlib.asynccontextmanager
async def gateway_on(redis: PrivateRedis, tmp: Path, mode: str) -> AsyncIterator[Gateway]:
    quotas = tmp / "quotas.yaml"
    quotas.write_text(
        f"when_redis_is_down: {mode}\n"
        "limits:\n  - {scope: key, name: '*', model: quota-rpm, requests_per_minute: 100000}\n"
    )
    async with running_gateway("postgres", tmp, redis_url=redis.url, quotas_file=str(quotas)) as gateway:
        yield gateway


async def _load(gateway: Gateway, key: str, stop: asyncio.Event) -> list[tuple[float, float, int, str]]:
    """Requests from four clients until ``stop``: (sent at, seconds taken, status, error code) for each."""
    seen: list[tuple[float, float, int, str]] = []

    async def client() -> None:
        async with gateway.http() as http:
            while not stop.is_set():
                started = time.monotonic()
                response = await http.post(
                    "/v1/chat/completions",
                    headers={"authorization": f"Bearer {key}"},
                    json={"model": "quota-rpm", "messages": PROMPT},
                )
                elapsed = time.monotonic() - started
                code = response.json().get("error", {}).get("code") if response.status_code != 200 else ""
                seen.append((started, elapsed, response.status_code, code or ""))
                await asyncio.sleep(0.01)

    await asyncio.gather(*(client() for _ in range(4)))
    return seen


async def _readiness(gateway: Gateway, stop: asyncio.Event) -> list[tuple[float, float, int, str]]:
    """/readyz polled until ``stop``: (asked at, answered at, status, what it said of Redis) each time."""
    seen: list[tuple[float, float, int, str]] = []
    async with gateway.http() as http:
        while not stop.is_set():
            asked = time.monotonic()
            response = await http.get("/readyz")
            check = response.json()["checks"].get("redis", "")
            seen.append((asked, time.monotonic(), response.status_code, check))
            await asyncio.sleep(0.05)
    return seen


@pytest.mark.parametrize("mode", ["open", "closed"])
async def test_redis_stopped_mid_load_then_restarted(
    tmp_path: Path, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    redis = PrivateRedis()
    await redis.start()
    try:
        async with gateway_on(redis, tmp_path, mode) as gateway:
            key = await gateway.create_key(f"redis-{mode}")
            stop = asyncio.Event()
            load = asyncio.create_task(_load(gateway, key, stop))
            readiness = asyncio.create_task(_readiness(gateway, stop))
            counted: list[bytes] = []
            while not counted:  # counted in Redis before the outage (a busy machine may take a while)
                counted = await redis.quota_keys()
                await asyncio.sleep(0.05)
            before = len(counted)
            await redis.stop()
            down = time.monotonic()
            await asyncio.sleep(1.5)
            restarting = time.monotonic()
            await redis.start()  # empty again: it keeps nothing on disk
            up = time.monotonic()
            await asyncio.sleep(1.5)  # fail-over lasts a second before Redis is tried again
            stop.set()
            seen, ready = await load, await readiness
            after = len(await redis.quota_keys())
            async with gateway.http() as http:
                metrics = (await http.get("/metrics")).text
        assert before > 0 and after > 0  # counted in Redis before, and again after its return
        assert max(elapsed for _, elapsed, _, _ in seen) < 2.0  # never a hang
        assert 500 not in {status for _, _, status, _ in seen}
        outage = [(status, code) for sent, _, status, code in seen if down + 0.1 < sent < up]
        recovered = [status for sent, _, status, _ in seen if sent > up + 1.1]
        assert outage and recovered and set(recovered) == {200}
        ready_during = [
            (code, check) for asked, answered, code, check in ready if down + 0.1 < asked < answered < restarting
        ]
        assert ready_during and any(check.startswith("failed") for _, check in ready_during)
        if mode == "open":
            # Failing open serves every request, so the replica stays in service: reported, not unready.
            assert {status for status, _ in ready_during} == {200}
            assert {status for status, _ in outage} == {200}
            assert gateway.runtime.quotas.fail_open_admissions > 0
            assert "fail-open" in caplog.text
            assert f"gateway_quota_fail_open_admissions_total {gateway.runtime.quotas.fail_open_admissions}" in metrics
        else:
            assert {status for status, _ in ready_during} == {503}  # it can serve nothing under a limit
            assert set(outage) == {(503, "service_unavailable")}
    finally:
        await redis.stop()
