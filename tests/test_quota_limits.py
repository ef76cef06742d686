"""Limits set through the admin API and the CLI: validated like the quotas file, stored in SQL,
enforced at once by the replica that took the change and within the refresh interval by others."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import openai
import pytest
from harness import ADMIN_KEY, Gateway
from test_serve import _run

PROMPT: Any = [{"role": "user", "content": "Say hello"}]
ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}


async def test_a_limit_set_through_the_admin_api_applies_at_once(gateway: Gateway) -> None:
    created = await gateway.runtime.keys.create("api-limited")
    client = gateway.openai(created.secret)
    target = {"scope": "key", "name": created.key.prefix, "model": "chat-model"}
    async with gateway.http() as http:
        first = await http.put("/admin/quotas/limits", headers=ADMIN, json={**target, "concurrent_requests": 1})
        assert first.status_code == 200, first.text
        again = await http.put("/admin/quotas/limits", headers=ADMIN, json={**target, "requests_per_minute": 1})
        assert again.json()["id"] == first.json()["id"]  # the same target: replaced, not added
        listed = await http.get("/admin/quotas/limits", headers=ADMIN)
        assert {**target, "requests_per_minute": 1, "id": first.json()["id"]} in listed.json()["api"]
        await client.chat.completions.create(model="chat-model", messages=PROMPT)
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(model="chat-model", messages=PROMPT)
        removed = await http.delete(f"/admin/quotas/limits/{first.json()['id']}", headers=ADMIN)
        assert removed.status_code == 200
        await client.chat.completions.create(model="chat-model", messages=PROMPT)  # limited no more
        missing = await http.delete(f"/admin/quotas/limits/{first.json()['id']}", headers=ADMIN)
        assert missing.status_code == 404 and missing.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("body", "param", "problem"),
    [
        ({"scope": "planet", "requests_per_minute": 1}, "scope", "expected one of org, team, key, user"),
        ({"scope": "key"}, None, "sets no limit"),
        ({"scope": "key", "tokens_per_minute": -5}, "tokens_per_minute", "expected a whole number >= 1"),
        ({"scope": "team", "budget": {"micro_usd": 5, "period": "decade"}}, "budget.period", "expected one of"),
        ({"scope": "key", "rpm": 3}, "rpm", "Unrecognized request argument"),
    ],
)
async def test_bad_limits_are_refused_in_openais_shape(
    gateway: Gateway, body: dict[str, Any], param: str | None, problem: str
) -> None:
    async with gateway.http() as http:
        response = await http.put("/admin/quotas/limits", headers=ADMIN, json=body)
    error = response.json()["error"]
    assert response.status_code == 400 and error["param"] == param and problem in error["message"]


async def test_a_limit_set_with_the_cli_reaches_the_running_gateway(gateway: Gateway) -> None:
    created = await gateway.runtime.keys.create("cli-limited")
    settings = gateway.runtime.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env |= {"GATEWAY_DATA_DIR": settings.data_dir, "GATEWAY_DATABASE_URL": settings.database_url}
    target = ["--scope", "key", "--name", created.key.prefix, "--model", "chat-model"]
    printed = await _run(env, "quotas", "set", *target, "--requests-per-minute", "1")
    limit_id = printed.split()[2].rstrip(":")
    assert limit_id in await _run(env, "quotas", "list")
    await asyncio.sleep(1.0)  # the gateway reloads stored limits every 0.5 s in these tests
    client = gateway.openai(created.secret)
    await client.chat.completions.create(model="chat-model", messages=PROMPT)
    with pytest.raises(openai.RateLimitError):
        await client.chat.completions.create(model="chat-model", messages=PROMPT)
    await _run(env, "quotas", "remove", limit_id)
    await asyncio.sleep(1.0)
    await client.chat.completions.create(model="chat-model", messages=PROMPT)
