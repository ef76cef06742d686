"""Quotas through the gateway, in both modes (in-process counters, and Redis shared by replicas):
requests, tokens, concurrency and money per key, team and end user, with OpenAI's 429s and headers."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openai
import pytest
from harness import ADMIN_KEY, Gateway, running_gateway
from test_serve import _run

PROMPT: Any = [{"role": "user", "content": "Say hello"}]
QUOTAS = """
timezone: Europe/Berlin
limits:
  - {scope: key, name: "*", model: quota-rpm, requests_per_minute: 3}
  - {scope: key, name: "*", model: quota-tpm, tokens_per_minute: 100}
  - {scope: key, name: "*", model: quota-slow, concurrent_requests: 2}
  - {scope: team, name: "*", model: quota-budget, budget: {micro_usd: 100, period: day}}
  - {scope: user, name: "*", model: quota-user, requests_per_minute: 2}
  - {scope: key, name: "*", model: quota-fail, requests_per_minute: 1, tokens_per_minute: 50}
  - {scope: key, name: "*", model: claude-model, requests_per_minute: 1}
"""


@pytest.fixture(scope="module", params=["embedded", "postgres"])
async def limited(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    tmp: Path = tmp_path_factory.mktemp(f"quotas-{request.param}")
    quotas = tmp / "quotas.yaml"
    quotas.write_text(QUOTAS)
    async with running_gateway(request.param, tmp, quotas_file=str(quotas)) as gateway:
        yield gateway


async def _clear_of_minute_boundary(needed: float = 8.0) -> None:
    """Per-minute windows are calendar minutes: start a burst where it cannot straddle two."""
    into = time.time() % 60
    if into > 60 - needed:
        await asyncio.sleep(60 - into + 0.2)


async def test_requests_per_minute_answer_429_with_openais_headers(limited: Gateway) -> None:
    key = await limited.create_key("rpm")
    client = limited.openai(key)
    await _clear_of_minute_boundary()
    remaining = []
    for _ in range(3):
        raw = await client.chat.completions.with_raw_response.create(model="quota-rpm", messages=PROMPT)
        assert raw.headers["x-ratelimit-limit-requests"] == "3"
        assert raw.headers["x-ratelimit-reset-requests"].endswith("s")
        remaining.append(raw.headers["x-ratelimit-remaining-requests"])
    assert remaining == ["2", "1", "0"]
    with pytest.raises(openai.RateLimitError) as caught:
        await client.chat.completions.create(model="quota-rpm", messages=PROMPT)
    response = caught.value.response
    assert response.status_code == 429 and 1 <= int(response.headers["retry-after"]) <= 60
    assert response.json()["error"]["type"] == "requests" and caught.value.code == "rate_limit_exceeded"
    assert response.headers["x-ratelimit-remaining-requests"] == "0"
    row = await limited.usage(response.headers["x-request-id"])
    assert (row.status_code, row.error_type, row.cost_nano_usd) == (429, "RateLimited", 0)
    assert len(limited.upstream.requests) >= 3  # the refused one never reached the backend
    # Other models of the same key are not limited by this rule.
    await client.chat.completions.create(model="quota-tpm", messages=PROMPT, max_tokens=10)


async def test_tokens_per_minute_reserve_the_estimate_and_settle_the_real_usage(limited: Gateway) -> None:
    key = await limited.create_key("tpm")
    client = limited.openai(key)
    await _clear_of_minute_boundary()
    with pytest.raises(openai.RateLimitError) as caught:  # an estimate alone beyond the limit
        await client.chat.completions.create(model="quota-tpm", messages=PROMPT, max_tokens=500)
    assert caught.value.response.json()["error"]["type"] == "tokens"
    seen = []
    for _ in range(4):  # each reserves prompt + 20 and settles at 12 + 7 = 19 tokens
        raw = await client.chat.completions.with_raw_response.create(model="quota-tpm", messages=PROMPT, max_tokens=20)
        seen.append(int(raw.headers["x-ratelimit-remaining-tokens"]))
        await asyncio.sleep(0.05)  # settlement runs off the request path
    assert raw.headers["x-ratelimit-limit-tokens"] == "100"
    assert seen == sorted(seen, reverse=True) and seen[-1] >= 0
    with pytest.raises(openai.RateLimitError):
        for _ in range(3):
            await client.chat.completions.create(model="quota-tpm", messages=PROMPT, max_tokens=20)


async def test_concurrency_limit_and_the_sdk_retrying_after_retry_after(limited: Gateway) -> None:
    key = await limited.create_key("concurrency")
    client = limited.openai(key)
    slow = [asyncio.create_task(client.chat.completions.create(model="quota-slow", messages=PROMPT)) for _ in range(2)]
    await asyncio.sleep(0.5)  # both in flight (the backend takes 1.5 s)
    with pytest.raises(openai.RateLimitError) as caught:
        await client.chat.completions.create(model="quota-slow", messages=PROMPT)
    assert caught.value.response.headers["retry-after"] == "1"
    # The SDK waits the Retry-After second and tries again, until a slot is free.
    started = time.monotonic()
    patient = limited.openai(key, max_retries=3)
    completion = await patient.chat.completions.create(model="quota-slow", messages=PROMPT)
    assert completion.choices[0].message.content and time.monotonic() - started >= 1.0
    await asyncio.gather(*slow)


async def test_a_spent_budget_is_insufficient_quota_and_never_overspent(limited: Gateway) -> None:
    team = f"budget-{uuid.uuid4().hex[:8]}"  # its own budget: Redis outlives a test run
    created = await limited.runtime.keys.create("budget", team=team)
    key = created.secret
    client = limited.openai(key, max_retries=2)
    answered = 0
    with pytest.raises(openai.RateLimitError) as caught:
        for _ in range(10):
            await client.chat.completions.create(model="quota-budget", messages=PROMPT, max_tokens=10)
            answered += 1
            await asyncio.sleep(0.05)
    error = caught.value
    assert error.code == "insufficient_quota" and error.response.json()["error"]["type"] == "insufficient_quota"
    # $0.000078 of $0.0001 is spent: the budget is not used up, but this request's estimate does not fit.
    message = error.response.json()["error"]["message"]
    assert message.startswith("This request's estimated cost ($0.0000") and "used up" not in message
    assert "does not fit in what is left of the day budget of team *, model quota-budget" in message
    assert "($0.000022 of $0.000100 left); lower max_tokens" in message
    assert error.response.headers["x-should-retry"] == "false"  # so the SDK did not retry
    rows = await limited.usage_rows_where(key_id=created.key.id, status_code=200)
    spent = sum(row.cost_nano_usd for row in rows)
    assert answered == 3 and spent == 3 * 26_000 <= 100_000  # 12 x $1/M + 7 x $2/M each


async def test_end_users_are_limited_one_by_one(limited: Gateway) -> None:
    key = await limited.create_key("users")
    client = limited.openai(key)
    await _clear_of_minute_boundary()
    alice, bob = (f"{name}-{uuid.uuid4().hex[:8]}" for name in ("alice", "bob"))  # Redis outlives a run
    for _ in range(2):
        await client.chat.completions.create(model="quota-user", messages=PROMPT, user=alice)
    with pytest.raises(openai.RateLimitError):
        await client.chat.completions.create(model="quota-user", messages=PROMPT, user=alice)
    await client.chat.completions.create(model="quota-user", messages=PROMPT, user=bob)
    await client.chat.completions.create(model="quota-user", messages=PROMPT)  # no user: not this rule


async def test_streams_carry_the_headers_and_settle_when_they_end(limited: Gateway) -> None:
    key = await limited.create_key("stream")
    client = limited.openai(key)
    await _clear_of_minute_boundary()
    async with client.chat.completions.with_streaming_response.create(
        model="quota-rpm", messages=PROMPT, stream=True
    ) as response:
        assert response.headers["x-ratelimit-remaining-requests"] == "2"
        [chunk async for chunk in await response.parse()]


async def test_usage_against_limits_through_the_admin_api_and_the_cli(limited: Gateway) -> None:
    created = await limited.runtime.keys.create("visible", team=f"seen-{uuid.uuid4().hex[:8]}")
    client = limited.openai(created.secret)
    await _clear_of_minute_boundary()
    await client.chat.completions.create(model="quota-rpm", messages=PROMPT)
    await client.chat.completions.create(model="quota-budget", messages=PROMPT, max_tokens=10)
    await asyncio.sleep(0.2)  # settlements land off the request path
    async with limited.http() as http:
        denied = await http.get("/admin/quotas/usage", params={"key": created.key.prefix})
        response = await http.get(
            "/admin/quotas/usage",
            params={"key": created.key.prefix, "user": "alice"},
            headers={"authorization": f"Bearer {ADMIN_KEY}"},
        )
        limits = await http.get("/admin/quotas/limits", headers={"authorization": f"Bearer {ADMIN_KEY}"})
    assert denied.status_code == 401
    # The file's limits in the file's own shape, as PUT takes them (micro-USD, not nano-USD).
    budget = {"scope": "team", "name": "*", "model": "quota-budget", "budget": {"micro_usd": 100, "period": "day"}}
    assert budget in limits.json()["file"]
    assert {"scope": "key", "name": "*", "model": "quota-rpm", "requests_per_minute": 3} in limits.json()["file"]
    rows = {(row["scope"], row["model"], row["metric"]): row for row in response.json()["data"]}
    assert rows[("key", "quota-rpm", "requests")] | {"resets_at": None} == {
        "scope": "key",
        "name": "*",
        "model": "quota-rpm",
        "metric": "requests",
        "unit": "requests",
        "limit": 3,
        "used": 1,
        "remaining": 2,
        "resets_at": None,
        "source": "redis" if limited.mode == "postgres" else "process",
        "usd": None,
    }
    assert rows[("team", "quota-budget", "spend")]["used"] == 26_000  # settled to the real cost
    assert rows[("team", "quota-budget", "spend")]["unit"] == "nano_usd"
    assert rows[("team", "quota-budget", "spend")]["usd"] == "$0.000026 / $0.0001"
    assert rows[("key", "quota-slow", "concurrent")]["used"] == 0
    assert ("user", "quota-user", "requests") in rows
    if limited.mode == "postgres":  # the CLI, a separate process, reads the same Redis
        env = {
            **os.environ,
            "GATEWAY_DATABASE_URL": limited.runtime.settings.database_url,
            "GATEWAY_REDIS_URL": limited.runtime.settings.redis_url,
            "GATEWAY_QUOTAS_FILE": limited.runtime.settings.quotas_file,
        }
        printed = await _run(env, "quotas", "usage", "--key", created.key.prefix)
        assert "quota-rpm" in printed and "counted in redis" in printed
        line = next(line for line in printed.splitlines() if "quota-rpm" in line and "requests" in line)
        assert line.split()[4:8] == ["3", "1", "2", "requests"]
        spend = next(line for line in printed.splitlines() if "quota-budget" in line and "spend" in line)
        assert spend.split()[4:8] == ["$0.0001", "$0.000026", "$0.000074", "usd"]


async def test_a_failed_request_releases_its_whole_reservation(limited: Gateway) -> None:
    key = await limited.create_key("failing")
    client = limited.openai(key)
    await _clear_of_minute_boundary()
    for _ in range(3):  # the backend fails each time; none uses up the one request a minute
        with pytest.raises(openai.InternalServerError):
            await client.chat.completions.create(model="quota-fail", messages=PROMPT, max_tokens=20)
        await asyncio.sleep(0.05)
    assert sum(1 for r in limited.upstream.requests if r.body and r.body.get("model") == "fake-error-500") >= 3


async def test_an_upload_the_backend_cannot_take_is_refused_before_quotas_are_counted(limited: Gateway) -> None:
    """Like every other request, an upload its adapter refuses costs no quota and meets none."""
    from test_media_endpoints import wav

    client = limited.openai(await limited.create_key("upload-order"))
    await _clear_of_minute_boundary()
    await client.chat.completions.create(model="claude-model", messages=PROMPT)  # the minute's one request
    with pytest.raises(openai.BadRequestError) as caught:  # not a 429: the backend offers no transcriptions
        await client.audio.transcriptions.create(model="claude-model", file=("a.wav", wav(0.1)))
    assert caught.value.code == "unsupported_endpoint"
