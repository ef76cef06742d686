"""The models file as configuration as code (issue 9): a changed model becomes a new active version,
``rollout: manual`` makes it a draft, ``--dry-run`` prints the plan and changes nothing, and what
``gateway models export`` writes syncs back to the same state. And unpriced models refused when the
gateway is told to."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from harness import ADMIN_KEY, running_gateway
from test_cli import _cli, _env

from gateway.audit.changes import current_generation

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
PROMPT = [{"role": "user", "content": "hi"}]


async def _versions(http: httpx.AsyncClient, model: str) -> list[tuple[int, str]]:
    shown = await http.get(f"/admin/models/{model}", headers=ADMIN)
    assert shown.status_code == 200, shown.text
    return [(v["number"], v["state"]) for v in shown.json()["versions"]]


def _changed(models_file: Path, tmp: Path) -> Path:
    spec: dict[str, Any] = yaml.safe_load(models_file.read_text())
    spec["models"]["chat-model"]["upstream_model"] = "fake-tokens-12-9"
    spec["models"]["embed-model"] |= {"rollout": "manual", "prices": {"input": 30000}}
    changed = tmp / "changed.yaml"
    changed.write_text(yaml.safe_dump(spec))
    return changed


async def test_sync_plans_applies_and_round_trips_through_export(tmp_path: Path) -> None:
    async with running_gateway("embedded", tmp_path) as gateway:
        env = _env(gateway)
        changed = _changed(Path(gateway.runtime.settings.models_file), tmp_path)
        generation = await current_generation(gateway.runtime.sessions)

        dry = await _cli(env, "models", "sync", "--dry-run", str(changed))
        assert dry.returncode == 0, dry.stderr
        assert "would create version chat-model v2" in dry.stdout
        assert "would create version embed-model v2 as a draft (rollout: manual)" in dry.stdout
        assert await current_generation(gateway.runtime.sessions) == generation, "a dry run changes nothing"
        async with gateway.http() as http:
            assert await _versions(http, "chat-model") == [(1, "active")]

        applied = await _cli(env, "models", "sync", str(changed))
        assert applied.returncode == 0, applied.stderr
        assert [line.removeprefix("would ") for line in dry.stdout.splitlines()] == applied.stdout.splitlines()
        async with gateway.http() as http:
            assert await _versions(http, "chat-model") == [(1, "retired"), (2, "active")]
            assert await _versions(http, "embed-model") == [(1, "active"), (2, "draft")]
        client = gateway.openai(await gateway.create_key("sync"))

        async def served_by_v2() -> bool:
            answer = await client.chat.completions.create(model="chat-model", messages=PROMPT)
            return answer.usage is not None and answer.usage.completion_tokens == 9

        await eventually_async(served_by_v2)

        exported = tmp_path / "exported.yaml"
        export = await _cli(env, "models", "export", "-o", str(exported))
        assert export.returncode == 0, export.stderr
        again = await _cli(env, "models", "sync", "--dry-run", str(exported))
        assert again.returncode == 0, again.stderr
        # The one difference: a secret written in the file is exported as an env: reference (an
        # export never holds a secret), which the file's backends then take.
        inline = {name for name, spec in yaml.safe_load(changed.read_text())["backends"].items() if "api_key" in spec}
        assert set(again.stdout.splitlines()) == {f"would update backend {name}" for name in inline}, again.stdout
        assert "api_key:" not in exported.read_text() and "do-not-leak" not in exported.read_text()


async def eventually_async(condition: Callable[[], Awaitable[bool]], attempts: int = 600) -> None:
    """The serving gateway takes a CLI change up by its SQL check (embedded mode: every second)."""
    for _ in range(attempts):
        if await condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the change was never taken up")


async def test_unpriced_models_refused_when_the_gateway_says_so(tmp_path: Path) -> None:
    async with running_gateway("embedded", tmp_path, unpriced_models="refuse") as gateway:
        client = gateway.openai(await gateway.create_key("unpriced"))
        with pytest.raises(openai.BadRequestError) as refused:
            await client.chat.completions.create(model="default-params", messages=PROMPT)
        error = refused.value.body
        assert isinstance(error, dict) and error["code"] == "model_unpriced" and error["param"] == "model"
        assert "GATEWAY_UNPRICED_MODELS" in error["message"]
        served = await client.chat.completions.create(model="chat-model", messages=PROMPT)
        assert served.usage is not None
        (row,) = await gateway.usage_rows_where(model="default-params")
        assert (row.status_code, row.cost_nano_usd, row.completion_tokens) == (400, 0, 0), "refused before the backend"
        assert all(sent.body.get("model") != "fake-plain" for sent in gateway.upstream.requests)
