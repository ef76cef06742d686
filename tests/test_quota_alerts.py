"""Soft limits: a budget passing 50% and then 75% fires one event each per period, as a log line
and a webhook POST that is retried until the receiver takes it; the refusal at its end fires
nothing more (the spend itself never reached 100%)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openai
import pytest
from harness import running_gateway

PROMPT: Any = [{"role": "user", "content": "Say hello"}]


@contextlib.asynccontextmanager
async def webhook_receiver(fail_first: int) -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """Collects JSON POSTs; answers the first ``fail_first`` with 500."""
    received: list[dict[str, Any]] = []
    attempts = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal attempts
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                body = await reader.readexactly(length)
                attempts += 1
                status = b"500 Oops" if attempts <= fail_first else b"204 No Content"
                if attempts > fail_first:
                    received.append(json.loads(body))
                writer.write(b"HTTP/1.1 " + status + b"\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hooks/quota", received
    finally:
        server.close()


@pytest.mark.parametrize("mode", ["embedded", "postgres"])
async def test_budget_thresholds_fire_once_each(tmp_path: Path, mode: str, caplog: pytest.LogCaptureFixture) -> None:
    async with webhook_receiver(fail_first=1) as (url, received):
        quotas = tmp_path / "quotas.yaml"
        quotas.write_text(
            f"alerts: {{thresholds: [0.5, 0.75], webhook_url: '{url}'}}\n"
            "limits:\n  - {scope: key, name: '*', model: quota-budget, budget: {micro_usd: 100, period: day}}\n"
        )
        async with running_gateway(mode, tmp_path, quotas_file=str(quotas)) as gateway:
            key = await gateway.create_key("alerts")
            client = gateway.openai(key)
            with pytest.raises(openai.RateLimitError):
                for _ in range(10):
                    await client.chat.completions.create(model="quota-budget", messages=PROMPT, max_tokens=10)
                    await asyncio.sleep(0.05)
            for _ in range(60):  # the first delivery fails; the retry comes a second later
                if len(received) == 2:
                    break
                await asyncio.sleep(0.1)
    received.sort(key=lambda event: event["threshold"])  # the first delivery failed: its retry came later
    assert [event["threshold"] for event in received] == [0.5, 0.75]
    assert {event["type"] for event in received} == {"quota.threshold"}
    assert received[0]["scope"] == "key" and received[0]["limit_nano_usd"] == 100_000
    assert received[0]["used_nano_usd"] >= 50_000 and received[1]["used_nano_usd"] >= 75_000
    assert caplog.text.count("quota alert: day budget of key *, model quota-budget reached") == 2
