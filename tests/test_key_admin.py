"""Keys through the admin API (issue 9): update, rotate with a grace period, scope by organization
and team; every write audited without its secret; bad input refused naming the field, changing
nothing. And the same through the CLI."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
from harness import ADMIN_KEY, Gateway
from sqlalchemy import select
from test_cli import _cli, _env

from gateway.db.models import AdminToken, ApiKey, AuditEntry, Team, User
from gateway.directory.tokens import new_token
from gateway.keys.secrets import hash_secret, visible_prefix

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


async def _works(http: httpx.AsyncClient, secret: str) -> int:
    return (await http.get("/v1/models", headers={"Authorization": f"Bearer {secret}"})).status_code


async def _token(gateway: Gateway, role: str, org_id: uuid.UUID, team_id: uuid.UUID | None = None) -> dict[str, str]:
    """An admin token for a new user with ``role`` (the directory API has its own tests)."""
    token = new_token()
    async with gateway.runtime.sessions.begin() as session:
        user = User(org_id=org_id, team_id=team_id, email=f"{uuid.uuid4().hex[:10]}@example.com", role=role)
        session.add(user)
        await session.flush()
        session.add(AdminToken(user_id=user.id, prefix=visible_prefix(token), secret_hash=hash_secret(token), name="t"))
    return {"Authorization": f"Bearer {token}"}


async def _audit(gateway: Gateway, key_id: str) -> list[AuditEntry]:
    async with gateway.runtime.sessions() as session:
        query = select(AuditEntry).where(AuditEntry.object_id == key_id).order_by(AuditEntry.id)
        return list((await session.scalars(query)).all())


async def _row(gateway: Gateway, key_id: str) -> ApiKey:
    async with gateway.runtime.sessions() as session:
        row = await session.get(ApiKey, uuid.UUID(key_id))
        assert row is not None
        return row


async def _create(http: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> httpx.Response:
    return await http.post("/admin/keys", headers=headers, json={"name": "k"} | body)


async def test_update_changes_what_is_given_and_audits_it(gateway: Gateway) -> None:
    async with gateway.http() as http:
        made = (await _create(http, ADMIN, models=["chat-model"], metadata={"a": 1})).json()
        key_id = made["info"]["id"]
        patched = await http.patch(
            f"/admin/keys/{key_id}",
            headers=ADMIN,
            json={"name": "renamed", "expires_in": "30d", "metadata": {"cost_center": "42"}, "owner": "ana"},
        )
        assert patched.status_code == 200, patched.text
        view = patched.json()
        assert view["name"] == "renamed" and view["owner"] == "ana" and view["metadata"] == {"cost_center": "42"}
        assert view["models"] == ["chat-model"], "a field left out stays"
        assert view["expires_at"]
        cleared = (await http.patch(f"/admin/keys/{key_id}", headers=ADMIN, json={"models": None})).json()
        assert cleared["models"] is None and cleared["name"] == "renamed"
        assert await _works(http, made["key"]) == 200
        shown = await http.get(f"/admin/keys/{made['info']['prefix']}", headers=ADMIN)
        assert shown.status_code == 200 and shown.json()["name"] == "renamed"
    entries = await _audit(gateway, key_id)
    assert [e.action for e in entries] == ["key.create", "key.update", "key.update"]
    first = entries[1]
    assert first.before and first.after and first.source == "api" and first.actor == "admin-key"
    assert (first.before["name"], first.after["name"]) == ("k", "renamed")
    assert first.before["metadata"] == {"a": 1} and first.after["metadata"] == {"cost_center": "42"}
    assert (entries[2].before["models"], entries[2].after["models"]) == (["chat-model"], None)
    assert made["key"] not in str([(e.before, e.after) for e in entries])


async def test_bad_updates_name_the_field_and_change_nothing(gateway: Gateway) -> None:
    async with gateway.http() as http:
        made = (await _create(http, ADMIN)).json()
        key_id = made["info"]["id"]
        before = await _row(gateway, key_id)
        for body, param, status in [
            ({"name": "  "}, "name", 400),
            ({"models": []}, "models", 400),
            ({"models": ["no-such-model"]}, "models", 404),
            ({"expires_in": "soon"}, "expires_in", 400),
            ({"expires_at": "2030-01-01T00:00:00+00:00", "expires_in": "1d"}, "expires_in", 400),
            ({"colour": "red"}, "colour", 400),
            ({"metadata": []}, "metadata", 400),
            ({"owner": "x" * 201}, "owner", 400),
        ]:
            answer = await http.patch(f"/admin/keys/{key_id}", headers=ADMIN, json=body)
            assert answer.status_code == status, (body, answer.text)
            error = answer.json()["error"]
            assert param in (error["param"] or "") or param in error["message"], (body, error)
        missing = await http.patch("/admin/keys/sk-gw-nothere", headers=ADMIN, json={"name": "x"})
        assert missing.status_code == 404
        await http.post(f"/admin/keys/{key_id}/revoke", headers=ADMIN)
        revoked = await http.patch(f"/admin/keys/{key_id}", headers=ADMIN, json={"name": "back"})
        assert revoked.status_code == 409, revoked.text
        rotated = await http.post(f"/admin/keys/{key_id}/rotate", headers=ADMIN, json={})
        assert rotated.status_code == 409, rotated.text
    after = await _row(gateway, key_id)
    assert (after.name, after.allowed_models, after.expires_at, after.secret_hash) == (
        before.name,
        before.allowed_models,
        before.expires_at,
        before.secret_hash,
    )
    assert [e.action for e in await _audit(gateway, key_id)] == ["key.create", "key.revoke"]


async def test_rotate_keeps_the_old_secret_for_the_grace_period_only(gateway: Gateway) -> None:
    async with gateway.http() as http:
        made = (await _create(http, ADMIN)).json()
        key_id, old = made["info"]["id"], made["key"]
        rotated = await http.post(f"/admin/keys/{key_id}/rotate", headers=ADMIN, json={"grace_seconds": 3600})
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()["key"]
        info = rotated.json()["info"]
        assert new != old and info["prefix"] == new[:12] and info["previous_secret_expires_at"]
        assert await _works(http, new) == 200
        assert await _works(http, old) == 200, "the old secret works during the grace period"
        # A second rotation with no grace: the secret it replaces stops at once, and the one before.
        again = await http.post(f"/admin/keys/{key_id}/rotate", headers=ADMIN, json={"grace_seconds": 0})
        newest = again.json()["key"]
        assert again.json()["info"]["previous_secret_expires_at"] is None
        assert await _works(http, newest) == 200
        for stale in (old, new):
            refused = await http.get("/v1/models", headers={"Authorization": f"Bearer {stale}"})
            assert refused.status_code == 401, refused.text
        too_long = await http.post(f"/admin/keys/{key_id}/rotate", headers=ADMIN, json={"grace_seconds": 31 * 86400})
        assert too_long.status_code == 400 and "grace_seconds" in too_long.text
        default = await http.post(f"/admin/keys/{key_id}/rotate", headers=ADMIN)
        assert default.status_code == 200 and default.json()["info"]["previous_secret_expires_at"]
    entries = await _audit(gateway, key_id)
    assert [e.action for e in entries] == ["key.create", "key.rotate", "key.rotate", "key.rotate"]
    text = str([(e.before, e.after) for e in entries])
    for secret in (old, new, newest, default.json()["key"]):
        assert secret not in text and hash_secret(secret) not in text
    assert entries[1].before["prefix"] == old[:12] and entries[1].after["prefix"] == new[:12]


async def test_rotated_old_secret_stops_when_its_grace_ends(gateway: Gateway) -> None:
    async with gateway.http() as http:
        made = (await _create(http, ADMIN)).json()
        rotated = await http.post(f"/admin/keys/{made['info']['id']}/rotate", headers=ADMIN, json={"grace_seconds": 1})
        assert rotated.status_code == 200
        deadline = asyncio.get_running_loop().time() + 30
        while await _works(http, made["key"]) == 200:  # the grace is one second; this waits for its end
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.2)
        refused = await http.get("/v1/models", headers={"Authorization": f"Bearer {made['key']}"})
        assert refused.json()["error"]["code"] == "rotated_api_key"
        assert await _works(http, rotated.json()["key"]) == 200


async def test_team_and_org_admins_reach_their_own_keys_only(gateway: Gateway) -> None:
    org = f"scoped-{uuid.uuid4().hex[:8]}"
    runtime = gateway.runtime
    red = await runtime.keys.create("red", org=org, team="red")
    blue = await runtime.keys.create("blue", org=org, team="blue")
    other = await runtime.keys.create("other", org=f"{org}-other")
    red_admin = await _token(gateway, "team_admin", red.key.org_id, red.key.team_id)
    org_admin = await _token(gateway, "org_admin", red.key.org_id)
    outsider = await _token(gateway, "org_admin", other.key.org_id)
    async with gateway.http() as http:
        listed = (await http.get("/admin/keys", headers=red_admin)).json()["data"]
        assert {k["id"] for k in listed} == {str(red.key.id)}
        listed = {k["id"] for k in (await http.get("/admin/keys", headers=org_admin)).json()["data"]}
        assert listed == {str(red.key.id), str(blue.key.id)}
        seen = (await http.get("/admin/keys", headers=outsider)).json()["data"]
        assert {k["org_id"] for k in seen} == {str(other.key.org_id)}
        # A team admin's new key is their team's; naming another team (even a new one) is refused
        # and creates nothing.
        mine = await _create(http, red_admin, name="mine")
        assert mine.status_code == 201 and mine.json()["info"]["team_id"] == str(red.key.team_id)
        refused = await _create(http, red_admin, team="green")
        assert refused.status_code == 403, refused.text
        outside = await _create(http, org_admin, org=f"{org}-other")
        assert outside.status_code == 403, outside.text
        nowhere = await _create(http, org_admin, org=f"{org}-brand-new")
        assert nowhere.status_code == 403
        for path in (f"/admin/keys/{blue.key.id}", f"/admin/keys/{other.key.id}"):
            assert (await http.get(path, headers=red_admin)).status_code == 403
            assert (await http.patch(path, headers=red_admin, json={"name": "x"})).status_code == 403
            assert (await http.post(f"{path}/rotate", headers=red_admin)).status_code == 403
            assert (await http.post(f"{path}/revoke", headers=red_admin)).status_code == 403
        give_away = await http.patch(f"/admin/keys/{red.key.id}", headers=red_admin, json={"team": "blue"})
        assert give_away.status_code == 403
        assert (
            await http.patch(f"/admin/keys/{blue.key.id}", headers=org_admin, json={"team": "red"})
        ).status_code == 200
        assert (await http.get(f"/admin/keys/{other.key.id}", headers=org_admin)).status_code == 403
    async with runtime.sessions() as session:
        teams = set((await session.scalars(select(Team.name).where(Team.org_id == red.key.org_id))).all())
        assert teams == {"red", "blue"}, "a refused create leaves no team behind"
        blue_row = await session.get(ApiKey, blue.key.id)
        red_row = await session.get(ApiKey, red.key.id)
        assert blue_row is not None and red_row is not None
        assert blue_row.team_id == red.key.team_id and red_row.team_id == red.key.team_id and red_row.name == "red"


async def test_cli_updates_rotates_and_shows_keys(gateway: Gateway) -> None:
    env = _env(gateway)
    made = await _cli(env, "keys", "create", "--name", "cli-key", "--org", "cli-org")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    prefix = secret[:12]
    updated = await _cli(env, "keys", "update", prefix, "--name", "cli-renamed", "--models", "chat-model")
    assert updated.returncode == 0, updated.stderr
    assert '"name": "cli-renamed"' in updated.stdout and '"chat-model"' in updated.stdout
    bad = await _cli(env, "keys", "update", prefix, "--models", "x", "--all-models")
    assert bad.returncode == 2 and "--models" in bad.stderr
    rotated = await _cli(env, "keys", "rotate", prefix, "--grace", "10m")
    assert rotated.returncode == 0, rotated.stderr
    new = rotated.stdout.strip()
    assert new != secret and "works until" in rotated.stderr
    bad_grace = await _cli(env, "keys", "rotate", new[:12], "--grace", "soon")
    assert bad_grace.returncode == 2 and "--grace" in bad_grace.stderr
    shown = await _cli(env, "keys", "show", new[:12])
    assert shown.returncode == 0 and "cli-renamed" in shown.stdout and new not in shown.stdout
    async with gateway.http() as http:
        assert await _works(http, new) == 200 and await _works(http, secret) == 200
    entries = await _audit(gateway, json.loads(shown.stdout)["id"])
    assert [e.action for e in entries] == ["key.create", "key.update", "key.rotate"]
    assert {e.source for e in entries} == {"cli"}


async def test_a_key_belongs_to_a_user_of_its_organization(gateway: Gateway) -> None:
    org = f"owned-{uuid.uuid4().hex[:8]}"
    anchor = await gateway.runtime.keys.create("anchor", org=org)
    other = await gateway.runtime.keys.create("other", org=f"{org}-other")
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    async with gateway.runtime.sessions.begin() as session:
        member = User(org_id=anchor.key.org_id, email=email)
        stranger = User(org_id=other.key.org_id, email=f"x-{email}")
        session.add_all([member, stranger])
    async with gateway.http() as http:
        made = await _create(http, ADMIN, org=org, user=email)
        assert made.status_code == 201, made.text
        assert made.json()["info"]["user_id"] == str(member.id)
        refused = await _create(http, ADMIN, org=org, user=f"x-{email}")
        assert refused.status_code == 404 and refused.json()["error"]["param"] == "user"
        key_id = made.json()["info"]["id"]
        moved = await http.patch(f"/admin/keys/{key_id}", headers=ADMIN, json={"user": str(stranger.id)})
        assert moved.status_code == 404 and moved.json()["error"]["param"] == "user"
        cleared = await http.patch(f"/admin/keys/{key_id}", headers=ADMIN, json={"user": None})
        assert cleared.status_code == 200 and cleared.json()["user_id"] is None
    entries = await _audit(gateway, key_id)
    assert entries[0].after["user_id"] == str(member.id)
    assert (entries[-1].before["user_id"], entries[-1].after["user_id"]) == (str(member.id), None)


async def test_a_keys_limits_are_set_on_the_key_and_survive_its_rotation(gateway: Gateway) -> None:
    async with gateway.http() as http:
        made = (await _create(http, ADMIN)).json()
        key_id, prefix = made["info"]["id"], made["info"]["prefix"]
        limit = await http.put(f"/admin/keys/{key_id}/limits", headers=ADMIN, json={"requests_per_minute": 500})
        assert limit.status_code == 200, limit.text
        assert (limit.json()["scope"], limit.json()["name"]) == ("key", key_id)
        by_prefix = await http.put(
            "/admin/quotas/limits",
            headers=ADMIN,
            json={"scope": "key", "name": prefix, "model": "chat-model", "concurrent_requests": 50},
        )
        assert by_prefix.status_code == 200
        empty = await http.put(f"/admin/keys/{key_id}/limits", headers=ADMIN, json={"model": "chat-model"})
        assert empty.status_code == 400, "a limit that limits nothing"
        rotated = (await http.post(f"/admin/keys/{key_id}/rotate", headers=ADMIN, json={"grace_seconds": 0})).json()
        usage = await http.get("/admin/quotas/usage", headers=ADMIN, params={"key": rotated["info"]["prefix"]})
        names = {(row["name"], row["metric"]) for row in usage.json()["data"] if row["scope"] == "key"}
        for limit_id in (limit.json()["id"], by_prefix.json()["id"]):
            assert (await http.delete(f"/admin/quotas/limits/{limit_id}", headers=ADMIN)).status_code == 200
    assert {(key_id, "requests"), (key_id, "concurrent")} <= names, names
    async with gateway.runtime.sessions() as session:
        query = select(AuditEntry).where(AuditEntry.object_id == by_prefix.json()["id"]).order_by(AuditEntry.id)
        renamed = list((await session.scalars(query)).all())[1]
    assert (renamed.before["name"], renamed.after["name"]) == (prefix, key_id), "the limit followed the rotation"
