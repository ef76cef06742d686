"""The audit log read through the admin API and the CLI: every kind of write shows with its actor,
source and before/after; filters, paging and bad filters; organization scoping; nothing but GET."""

from __future__ import annotations

import getpass
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import ADMIN_KEY, Gateway
from test_cli import _cli, _env

from gateway.db.models import AdminToken, User
from gateway.directory.tokens import new_token
from gateway.keys.secrets import hash_secret

ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}
SPEC = {"backend": "fake", "upstream_model": "fake-tokens-12-7", "prices": {"input": 1, "output": 2}}


def _unique(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:8]}"


async def entries(http: httpx.AsyncClient, headers: dict[str, str] = ADMIN, **params: Any) -> list[dict[str, Any]]:
    response = await http.get("/admin/audit", headers=headers, params=params)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def token_for(gateway: Gateway, role: str, org_id: uuid.UUID, team_id: uuid.UUID | None = None) -> dict[str, str]:
    """Admin headers of a new user with ``role`` in that organization (and team)."""
    token = new_token()
    async with gateway.runtime.sessions.begin() as session:
        user = User(org_id=org_id, team_id=team_id, email=f"{_unique(role)}@example.com", role=role)
        session.add(user)
        await session.flush()
        session.add(AdminToken(user_id=user.id, prefix=token[:13], secret_hash=hash_secret(token), name="test"))
    return {"authorization": f"Bearer {token}"}


async def test_key_and_limit_writes_through_the_api_show_with_before_and_after(gateway: Gateway) -> None:
    async with gateway.http() as http:
        made = await http.post("/admin/keys", headers=ADMIN, json={"name": _unique("audited"), "team": _unique("t")})
        assert made.status_code == 201, made.text
        key = made.json()["info"]
        assert (await http.post(f"/admin/keys/{key['id']}/revoke", headers=ADMIN)).status_code == 200
        target = {"scope": "key", "name": key["prefix"]}
        first = await http.put("/admin/quotas/limits", headers=ADMIN, json={**target, "requests_per_minute": 5})
        again = await http.put("/admin/quotas/limits", headers=ADMIN, json={**target, "concurrent_requests": 2})
        limit_id = first.json()["id"]
        assert (await http.delete(f"/admin/quotas/limits/{limit_id}", headers=ADMIN)).status_code == 200
        on_key = await entries(http, object=key["id"])
        on_limit = await entries(http, object_type="limit", object_id=limit_id)
    assert again.json()["id"] == limit_id
    assert [e["action"] for e in on_key] == ["key.revoke", "key.create"]  # newest first
    revoked, created = on_key
    assert created["before"] is None and created["after"]["prefix"] == key["prefix"]
    assert revoked["before"]["revoked_at"] is None and revoked["after"]["revoked_at"] is not None
    assert made.json()["key"] not in json.dumps(on_key) and "secret" not in json.dumps(on_key)
    assert [e["action"] for e in on_limit] == ["limit.remove", "limit.set", "limit.set"]
    removed, replaced, set_ = on_limit
    view = {"id": limit_id, **target}
    assert set_["before"] is None and set_["after"] == {**view, "requests_per_minute": 5}
    assert replaced["before"] == set_["after"] and replaced["after"] == {**view, "concurrent_requests": 2}
    assert removed["before"] == replaced["after"] and removed["after"] is None
    assert {e["org_id"] for e in on_limit} == {key["org_id"]} and {e["team_id"] for e in on_limit} == {key["team_id"]}
    for entry in on_key + on_limit:
        assert (entry["actor"], entry["role"], entry["source"]) == ("admin-key", "superuser", "api")
    generations = [e["generation"] for e in on_limit]
    assert generations == sorted(generations, reverse=True) and len(set(generations)) == 3


async def test_model_and_version_writes_through_the_api_show_with_before_and_after(gateway: Gateway) -> None:
    name = _unique("audited-model")
    async with gateway.http() as http:
        assert (await http.post("/admin/models", headers=ADMIN, json={"name": name})).status_code == 201
        for upstream in ("fake-tokens-12-7", "fake-tokens-20-9", "fake-tokens-30-3"):
            spec = {**SPEC, "upstream_model": upstream}
            assert (await http.post(f"/admin/models/{name}/versions", headers=ADMIN, json=spec)).status_code == 201
        for number, body in ((1, {"to": "active"}), (2, {"to": "active"})):
            promoted = await http.post(f"/admin/models/{name}/versions/{number}/promote", headers=ADMIN, json=body)
            assert promoted.status_code == 200, promoted.text
        assert (await http.post(f"/admin/models/{name}/rollback", headers=ADMIN)).status_code == 200
        assert (await http.post(f"/admin/models/{name}/versions/3/retire", headers=ADMIN)).status_code == 200
        model = await entries(http, object=name)
        v1 = await entries(http, object=f"{name} v1")
        v3 = await entries(http, object=f"{name} v3", action="version.retire")
    assert [e["action"] for e in model] == ["model.create"] and model[0]["after"]["name"] == name
    assert [e["action"] for e in v1] == ["version.activate", "version.retire", "version.activate", "version.create"]
    assert v1[3]["before"] is None and v1[3]["after"]["upstream_model"] == "fake-tokens-12-7"
    assert v1[0]["before"] == {"number": 1, "state": "retired"} and v1[0]["after"] == {"number": 1, "state": "active"}
    assert [(e["before"], e["after"]) for e in v3] == [
        ({"number": 3, "state": "draft"}, {"number": 3, "state": "retired"})
    ]
    assert {(e["actor"], e["source"]) for e in model + v1 + v3} == {("admin-key", "api")}


async def test_writes_made_with_the_cli_show_as_its_actor_and_the_list_prints_them(
    gateway: Gateway, tmp_path: Path
) -> None:
    env, actor = _env(gateway), f"cli:{getpass.getuser()}"
    name, model = _unique("cli-audited"), _unique("cli-model")
    created = await _cli(env, "keys", "create", "--name", name)
    assert created.returncode == 0, created.stderr
    key_id = created.stderr.split()[2]
    assert (await _cli(env, "keys", "revoke", key_id)).returncode == 0
    limit = await _cli(env, "quotas", "set", "--scope", "key", "--name", key_id, "--requests-per-minute", "3")
    limit_id = limit.stdout.split()[2].rstrip(":")
    assert (await _cli(env, "quotas", "remove", limit_id)).returncode == 0
    spec = tmp_path / "version.json"
    spec.write_text(json.dumps(SPEC))
    for args in (
        ("create", model),
        ("version", model, str(spec)),
        ("version", model, str(spec)),
        ("promote", model, "1"),
        ("promote", model, "2"),
        ("rollback", model),
        ("version", model, str(spec)),
        ("retire", model, "3"),
    ):
        ran = await _cli(env, "models", *args)
        assert ran.returncode == 0, ran.stderr
    listed = await _cli(env, "audit", "list", "--actor", actor, "--limit", "1000", "--json")
    assert listed.returncode == 0, listed.stderr
    mine = [
        e
        for e in json.loads(listed.stdout)
        if e["object_id"] in (key_id, limit_id) or model in (e["object_name"] or "")
    ]
    assert {e["source"] for e in mine} == {"cli"} and {e["role"] for e in mine} == {"superuser"}
    kinds = {(e["object_type"], e["action"]) for e in mine}
    assert kinds >= {
        ("key", "key.create"),
        ("key", "key.revoke"),
        ("limit", "limit.set"),
        ("limit", "limit.remove"),
        ("model", "model.create"),
        ("version", "version.create"),
        ("version", "version.activate"),
        ("version", "version.retire"),
    }
    removed = next(e for e in mine if e["action"] == "limit.remove")
    assert removed["before"]["requests_per_minute"] == 3 and removed["after"] is None
    async with gateway.http() as http:  # the API shows the same entries
        through_api = await entries(http, object=key_id, source="cli")
    assert [e["action"] for e in through_api] == ["key.revoke", "key.create"]
    table = await _cli(env, "audit", "list", "--object", key_id)
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["id", "at", "actor", "source", "action", "object"]
    assert [line.split()[4] for line in lines[1:]] == ["key.revoke", "key.create"]
    assert all(actor[:24] in line and " cli " in line for line in lines[1:])
    shown = await _cli(env, "audit", "show", str(through_api[0]["id"]))
    assert json.loads(shown.stdout)["action"] == "key.revoke"
    bad = await _cli(env, "audit", "list", "--since", "yesterday")
    assert bad.returncode == 2 and "since" in bad.stderr


async def test_filters_and_paging(gateway: Gateway) -> None:
    stem = _unique("paged")
    before = datetime.now(UTC) - timedelta(seconds=1)
    async with gateway.http() as http:
        for number in range(5):
            made = await http.post("/admin/keys", headers=ADMIN, json={"name": f"{stem}-{number}", "team": stem})
            assert made.status_code == 201
        mine = await entries(http, action="key.create", since=before.isoformat(), limit=1000)
        mine = [e for e in mine if e["object_name"].startswith(stem)]
        assert [e["object_name"] for e in mine] == [f"{stem}-{n}" for n in reversed(range(5))]
        pages: list[dict[str, Any]] = []
        params: dict[str, Any] = {"action": "key.create", "limit": 2, "until": _later(mine[0]["at"])}
        while len(pages) < 5:
            page = (await http.get("/admin/audit", headers=ADMIN, params=params)).json()
            assert len(page["data"]) == 2 and page["next_before_id"] == page["data"][-1]["id"]
            pages += page["data"]
            params["before_id"] = page["next_before_id"]
        assert [e["id"] for e in pages[:5]] == [e["id"] for e in mine]  # the newest five, in order, no gap
        ids = [e["id"] for e in mine]
        assert ids == sorted(ids, reverse=True)
        last = await http.get("/admin/audit", headers=ADMIN, params={"object": mine[-1]["object_id"], "limit": 5})
        assert last.json()["next_before_id"] is None  # fewer than asked for: the last page
        # The same moment in another zone; until is exclusive.
        in_berlin = datetime.fromisoformat(mine[2]["at"]).astimezone(timezone(timedelta(hours=2))).isoformat()
        older = await entries(http, action="key.create", until=in_berlin, since=before.isoformat())
        assert [e["id"] for e in older if e["object_name"].startswith(stem)] == ids[3:]
        team = await entries(http, object=stem, object_type="team")
        assert [e["action"] for e in team] == ["team.create"]
        org = team[0]["org_id"]
        assert {e["org_id"] for e in await entries(http, org_id=org, limit=50)} == {org}
        assert await entries(http, actor="nobody-at-all") == []
        assert await entries(http, role="superuser", source="api", action="key.create", limit=1) != []
        assert await entries(http, since="2999-01-01T00:00:00Z") == []
        assert await entries(http, since=mine[0]["at"], until=mine[0]["at"]) == []  # an empty range
        one = await http.get(f"/admin/audit/{mine[0]['id']}", headers=ADMIN)
        assert one.status_code == 200 and one.json() == mine[0]


def _later(at: str) -> str:
    return (datetime.fromisoformat(at) + timedelta(seconds=1)).isoformat()


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"before_id": 0}, "before_id"),
        ({"before_id": 2**63}, "before_id"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-01-01T00:00:00"}, "since"),  # no zone
        ({"until": "2026-13-01T00:00:00Z"}, "until"),
        ({"org_id": "acme"}, "org_id"),
        ({"actor": ""}, "actor"),
        ({"object": "x" * 401}, "object"),
        ({"action": "key\x00create"}, "action"),
    ],
)
async def test_a_bad_filter_is_a_400_naming_it(gateway: Gateway, params: dict[str, Any], param: str) -> None:
    async with gateway.http() as http:
        response = await http.get("/admin/audit", headers=ADMIN, params=params)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


async def test_an_unknown_or_impossible_entry(gateway: Gateway) -> None:
    async with gateway.http() as http:
        missing = await http.get(f"/admin/audit/{2**62}", headers=ADMIN)
        zero = await http.get("/admin/audit/0", headers=ADMIN)
        huge = await http.get(f"/admin/audit/{2**64}", headers=ADMIN)
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "invalid_request_error"
    assert zero.status_code == 404 and huge.status_code == 404


async def test_org_admins_and_viewers_read_only_their_organizations_entries(gateway: Gateway) -> None:
    mine = await gateway.runtime.keys.create("org-a-key", org=_unique("org-a"), team=_unique("team"))
    theirs = await gateway.runtime.keys.create("org-b-key", org=_unique("org-b"))
    org_a, org_b = mine.key.org_id, theirs.key.org_id
    viewer = await token_for(gateway, "viewer", org_a)
    org_admin = await token_for(gateway, "org_admin", org_a)
    team_admin = await token_for(gateway, "team_admin", org_a, mine.key.team_id)
    async with gateway.http() as http:
        own = await entries(http, viewer, limit=1000)
        assert own and {e["org_id"] for e in own} == {str(org_a)}
        assert {e["action"] for e in own} >= {"org.create", "team.create", "key.create"}
        assert [e["id"] for e in await entries(http, org_admin, limit=1000)] == [e["id"] for e in own]
        assert await entries(http, org_admin, object=str(theirs.key.id)) == []
        other = await http.get("/admin/audit", headers=viewer, params={"org_id": str(org_b)})
        assert other.status_code == 403
        assert (await entries(http, viewer, org_id=str(org_a))) == own
        theirs_entry = (await entries(http, object=str(theirs.key.id)))[0]
        assert (await http.get(f"/admin/audit/{theirs_entry['id']}", headers=viewer)).status_code == 403
        assert (await http.get(f"/admin/audit/{own[0]['id']}", headers=viewer)).status_code == 200
        model_entry = (await entries(http, object_type="model", limit=1))[0]  # models are no organization's
        assert (await http.get(f"/admin/audit/{model_entry['id']}", headers=org_admin)).status_code == 403
        assert (await http.get("/admin/audit", headers=team_admin)).status_code == 403  # not their role's


async def test_the_audit_routes_only_read(gateway: Gateway) -> None:
    async with gateway.http() as http:
        schema = (await http.get("/schema/openapi.json")).json()
        methods = {
            (path, method)
            for path, operations in schema["paths"].items()
            if path.startswith("/admin/audit")
            for method in operations
            if method not in ("parameters", "options")
        }
        assert methods == {("/admin/audit", "get"), ("/admin/audit/{entry_id}", "get")}
        one = (await entries(http, limit=1))[0]["id"]
        for path in ("/admin/audit", f"/admin/audit/{one}"):
            for method in ("POST", "PUT", "PATCH", "DELETE"):
                response = await http.request(method, path, headers=ADMIN, json={})
                assert response.status_code == 405, (method, path)
        assert (await http.get(f"/admin/audit/{one}", headers=ADMIN)).status_code == 200  # still there
    routes = {route.path for route in gateway_routes(gateway) if route.path.startswith("/admin/audit")}
    assert routes == {"/admin/audit", "/admin/audit/{entry_id:int}"}


def gateway_routes(gateway: Gateway) -> list[Any]:
    from gateway.app import create_app

    app = create_app(gateway.runtime.settings)
    for route in app.routes:
        if route.path.startswith("/admin/audit"):
            assert set(route.methods) <= {"GET", "HEAD", "OPTIONS"}, (route.path, route.methods)
    return list(app.routes)


async def test_the_models_file_sync_shows_as_its_own_actor(gateway: Gateway) -> None:
    async with gateway.http() as http:
        synced = await entries(http, source="sync", limit=1000)
        by_name = await entries(http, actor="models-file", object="chat-model")
    assert {(e["actor"], e["role"]) for e in synced} == {("models-file", "system")}
    assert {"model", "version", "backend"} <= {e["object_type"] for e in synced}
    created = [e for e in by_name if e["action"] == "model.create"]
    assert len(created) == 1 and created[0]["before"] is None and created[0]["after"]["name"] == "chat-model"
