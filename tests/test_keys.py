"""Keys: the revocation bound, the admin API and the CLI."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import openai
import pytest
from harness import ADMIN_KEY, KEY_CACHE_TTL, Gateway

PROMPT = [{"role": "user", "content": "hi"}]


async def _works(gateway: Gateway, key: str) -> bool:
    try:
        await gateway.openai(key).chat.completions.create(model="chat-model", messages=PROMPT)
    except openai.AuthenticationError:
        return False
    return True


async def test_key_revoked_elsewhere_stops_within_the_cache_ttl(gateway: Gateway) -> None:
    key = await gateway.create_key("revoked-elsewhere")
    assert await _works(gateway, key)
    # Revoke in SQL only, as the CLI or another replica would: this process learns of it
    # when its cache entry expires, which is the documented bound (GATEWAY_KEY_CACHE_TTL_SECONDS).
    await gateway.runtime.keys.revoke(key[:12])
    revoked_at = asyncio.get_running_loop().time()
    while await _works(gateway, key):
        assert asyncio.get_running_loop().time() - revoked_at <= KEY_CACHE_TTL + 0.5
        await asyncio.sleep(0.05)
    with pytest.raises(openai.AuthenticationError, match="revoked"):
        await gateway.openai(key).chat.completions.create(model="chat-model", messages=PROMPT)


async def test_admin_api_creates_lists_and_revokes_at_once(gateway: Gateway) -> None:
    admin = {"authorization": f"Bearer {ADMIN_KEY}"}
    async with gateway.http() as http:
        created = await http.post(
            "/admin/keys", headers=admin, json={"name": "via-admin", "models": ["chat-model"], "team": "ml"}
        )
        assert created.status_code == 201, created.text
        secret = created.json()["key"]
        info = created.json()["info"]
        assert secret.startswith("sk-gw-") and info["prefix"] == secret[:12] and info["models"] == ["chat-model"]
        assert await _works(gateway, secret)

        listing = await http.get("/admin/keys", headers=admin)
        assert listing.status_code == 200
        assert info["id"] in {k["id"] for k in listing.json()["data"]}
        assert secret not in listing.text, "a secret is shown once, at creation"

        revoked = await http.post(f"/admin/keys/{info['id']}/revoke", headers=admin)
        assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert not await _works(gateway, secret), "revocation through this process is immediate"


async def test_admin_api_needs_the_admin_key(gateway: Gateway, key: str) -> None:
    async with gateway.http() as http:
        anonymous = await http.get("/admin/keys")
        wrong = await http.get("/admin/keys", headers={"authorization": "Bearer nope"})
        user_key = await http.get("/admin/keys", headers={"authorization": f"Bearer {key}"})
        bad_body = await http.post("/admin/keys", headers={"authorization": f"Bearer {ADMIN_KEY}"}, json={"nom": "x"})
        missing = await http.delete("/admin/keys/sk-gw-nope", headers={"authorization": f"Bearer {ADMIN_KEY}"})
    for response in (anonymous, wrong, user_key):
        assert response.status_code == 401 and response.json()["error"]["type"] == "invalid_request_error"
    assert bad_body.status_code == 400 and "error" in bad_body.json()
    assert missing.status_code == 404 and "error" in missing.json()


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_cli_creates_lists_and_revokes_keys(tmp_path: Path) -> None:
    env = {**os.environ, "GATEWAY_DATA_DIR": str(tmp_path / "data")}
    # No gateway has served from this database yet, so it knows no models to allow.
    unknown_models = _cli(env, "keys", "create", "--name", "cli-key", "--models", "a,b")
    assert unknown_models.returncode == 2 and "'a', 'b'" in unknown_models.stderr
    created = _cli(env, "keys", "create", "--name", "cli-key", "--expires", "30d")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.splitlines()[0]
    assert secret.startswith("sk-gw-") and "shown only once" in created.stderr

    listing = _cli(env, "keys", "list")
    assert secret[:12] in listing.stdout and secret not in listing.stdout and "active" in listing.stdout

    revoked = _cli(env, "keys", "revoke", secret[:12])
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked" in _cli(env, "keys", "list").stdout

    unknown = _cli(env, "keys", "revoke", "sk-gw-nothing")
    assert unknown.returncode == 2 and "No key" in unknown.stderr
    bad_expiry = _cli(env, "keys", "create", "--name", "x", "--expires", "someday")
    assert bad_expiry.returncode == 2 and "--expires" in bad_expiry.stderr


def test_cli_migrate_and_settings_reference(tmp_path: Path) -> None:
    env = {**os.environ, "GATEWAY_DATA_DIR": str(tmp_path / "data")}
    migrated = _cli(env, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    reference = _cli(env, "settings")
    assert "GATEWAY_DATABASE_URL" in reference.stdout and "GATEWAY_KEY_CACHE_TTL_SECONDS" in reference.stdout


async def test_admin_api_handles_racing_creates_and_bad_text(gateway: Gateway) -> None:
    admin = {"authorization": f"Bearer {ADMIN_KEY}"}
    async with gateway.http() as http:
        racing = await asyncio.gather(
            *[http.post("/admin/keys", headers=admin, json={"name": f"r{i}", "team": "new-team"}) for i in range(8)]
        )
        assert [r.status_code for r in racing] == [201] * 8
        assert len({r.json()["info"]["team_id"] for r in racing}) == 1
        for body in (
            {"name": "x" * 201},
            {"name": "nul\x00"},
            {"name": "x", "team": "t" * 300},
            {"name": "x", "models": []},
        ):
            response = await http.post("/admin/keys", headers=admin, json=body)
            assert response.status_code == 400, (body, response.text)
        revoke_nul = await http.post("/admin/keys/a%00b/revoke", headers=admin)
        assert revoke_nul.status_code == 404


def test_cli_refuses_an_empty_models_list(tmp_path: Path) -> None:
    env = {**os.environ, "GATEWAY_DATA_DIR": str(tmp_path / "data")}
    created = _cli(env, "keys", "create", "--name", "x", "--models", "")
    assert created.returncode == 2 and "models" in created.stderr
    too_far = _cli(env, "keys", "create", "--name", "x", "--expires", "99999999d")
    assert too_far.returncode == 2 and "--expires" in too_far.stderr
