"""Organizations, teams, users and admin tokens through the admin API: every operation, the
audit log's before and after for each, deletes refused (409, nothing deleted) while something
refers to the object, bad input a 400 naming the field, unknown objects 404, and scope: another
organization's admin sees nothing of it and touches nothing (403), a team admin reads only their
team's. A token made through the API acts with its user's role, and stops at once when revoked."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from harness import ADMIN_KEY, Gateway
from sqlalchemy import select, update

from gateway.db.models import AdminToken, ApiKey, AuditEntry, Organization, Team, User

ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def _post(http: httpx.AsyncClient, path: str, body: dict[str, Any], headers: dict[str, str] = ADMIN) -> Any:
    response = await http.post(path, headers=headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def _org(http: httpx.AsyncClient, **extra: Any) -> dict[str, Any]:
    return dict(await _post(http, "/admin/orgs", {"name": _name("org"), **extra}))


async def _team(http: httpx.AsyncClient, org: dict[str, Any]) -> dict[str, Any]:
    return dict(await _post(http, f"/admin/orgs/{org['id']}/teams", {"name": _name("team")}))


async def _user(http: httpx.AsyncClient, org: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body = {"email": f"{_name('u')}@example.com", "org": org["name"], **extra}
    return dict(await _post(http, "/admin/users", body))


async def _token(http: httpx.AsyncClient, user: dict[str, Any], **extra: Any) -> str:
    created = await _post(http, f"/admin/users/{user['id']}/tokens", {"name": "t", **extra})
    return str(created["token"])


async def _audit(gateway: Gateway, object_id: str) -> list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]]:
    async with gateway.runtime.sessions() as session:
        rows = await session.scalars(
            select(AuditEntry).where(AuditEntry.object_id == object_id).order_by(AuditEntry.id)
        )
        return [(e.action, e.before, e.after) for e in rows.all()]


async def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


async def test_orgs_are_created_shown_updated_listed_and_deleted_with_audit_entries(gateway: Gateway) -> None:
    async with gateway.http() as http:
        org = await _org(http, description="first")
        by_name = await http.get(f"/admin/orgs/{org['name']}", headers=ADMIN)
        by_id = await http.get(f"/admin/orgs/{org['id']}", headers=ADMIN)
        assert by_name.json() == by_id.json() == org and org["description"] == "first"
        renamed = _name("renamed")
        updated = await http.patch(f"/admin/orgs/{org['id']}", headers=ADMIN, json={"name": renamed})
        assert updated.status_code == 200, updated.text
        assert updated.json()["name"] == renamed and updated.json()["description"] == "first"
        cleared = await http.patch(f"/admin/orgs/{renamed}", headers=ADMIN, json={"description": None})
        assert cleared.json()["description"] is None
        same = await http.patch(f"/admin/orgs/{renamed}", headers=ADMIN, json={"name": renamed})
        assert same.status_code == 200  # nothing changed: no audit entry
        listed = (await http.get("/admin/orgs", headers=ADMIN)).json()["data"]
        assert renamed in [o["name"] for o in listed]
        deleted = await http.delete(f"/admin/orgs/{renamed}", headers=ADMIN)
        assert deleted.status_code == 200 and deleted.json() == {"id": org["id"], "object": "org", "deleted": True}
        assert (await http.get(f"/admin/orgs/{org['id']}", headers=ADMIN)).status_code == 404
    base = {"id": org["id"], "name": org["name"], "description": "first"}
    assert await _audit(gateway, org["id"]) == [
        ("org.create", None, base),
        ("org.update", base, {**base, "name": renamed}),
        ("org.update", {**base, "name": renamed}, {**base, "name": renamed, "description": None}),
        ("org.delete", {**base, "name": renamed, "description": None}, None),
    ]


async def test_teams_are_managed_within_their_organization(gateway: Gateway) -> None:
    async with gateway.http() as http:
        org, other = await _org(http), await _org(http)
        team = await _post(http, f"/admin/orgs/{org['name']}/teams", {"name": "ml", "description": "d"})
        assert team["org_id"] == org["id"] and team["name"] == "ml"
        assert (await _post(http, f"/admin/orgs/{other['id']}/teams", {"name": "ml"}))["org_id"] == other["id"]
        twice = await http.post(f"/admin/orgs/{org['id']}/teams", headers=ADMIN, json={"name": "ml"})
        assert (await _error(twice, 409))["param"] == "name"
        shown = await http.get(f"/admin/orgs/{org['id']}/teams/ml", headers=ADMIN)
        assert shown.json() == team
        # A team is found only in its own organization, by id as by name.
        assert (await http.get(f"/admin/orgs/{other['id']}/teams/{team['id']}", headers=ADMIN)).status_code == 404
        listed = await http.get(f"/admin/orgs/{org['id']}/teams", headers=ADMIN)
        assert [t["id"] for t in listed.json()["data"]] == [team["id"]]
        updated = await http.patch(f"/admin/orgs/{org['id']}/teams/ml", headers=ADMIN, json={"name": "ml2"})
        assert updated.status_code == 200 and updated.json()["name"] == "ml2"
        deleted = await http.delete(f"/admin/orgs/{org['id']}/teams/{team['id']}", headers=ADMIN)
        assert deleted.status_code == 200 and deleted.json()["object"] == "team"
        assert (await http.get(f"/admin/orgs/{org['id']}/teams", headers=ADMIN)).json()["data"] == []
    view = {"id": team["id"], "org_id": org["id"], "name": "ml", "description": "d"}
    assert await _audit(gateway, team["id"]) == [
        ("team.create", None, view),
        ("team.update", view, {**view, "name": "ml2"}),
        ("team.delete", {**view, "name": "ml2"}, None),
    ]


async def test_users_are_created_shown_updated_and_deleted(gateway: Gateway) -> None:
    async with gateway.http() as http:
        org = await _org(http)
        team = await _team(http, org)
        email = f"{_name('ada')}@example.com"
        body = {"email": email, "org": org["id"], "team": team["name"], "role": "team_admin", "name": "Ada"}
        user = await _post(http, "/admin/users", body)
        assert (user["org_id"], user["team_id"], user["role"], user["disabled"]) == (
            org["id"],
            team["id"],
            "team_admin",
            False,
        )
        assert (await http.get(f"/admin/users/{email}", headers=ADMIN)).json() == user
        twice = await http.post("/admin/users", headers=ADMIN, json=body)
        assert (await _error(twice, 409))["param"] == "email"
        listed = await http.get("/admin/users", headers=ADMIN, params={"org": org["name"]})
        assert [u["id"] for u in listed.json()["data"]] == [user["id"]]
        changed = await http.patch(
            f"/admin/users/{user['id']}", headers=ADMIN, json={"role": "viewer", "team": None, "disabled": True}
        )
        assert changed.status_code == 200, changed.text
        assert (changed.json()["role"], changed.json()["team_id"], changed.json()["disabled"]) == ("viewer", None, True)
        deleted = await http.delete(f"/admin/users/{email}", headers=ADMIN)
        assert deleted.status_code == 200 and deleted.json()["object"] == "user"
        assert (await http.get(f"/admin/users/{user['id']}", headers=ADMIN)).status_code == 404
    entries = await _audit(gateway, user["id"])
    assert [e[0] for e in entries] == ["user.create", "user.update", "user.delete"]
    first = {
        "id": user["id"],
        "email": email,
        "name": "Ada",
        "org_id": org["id"],
        "team_id": team["id"],
        "role": "team_admin",
        "disabled_at": None,
    }
    assert entries[0] == ("user.create", None, first)
    after = entries[1][2]
    assert entries[1][1] == first and after is not None
    assert after == {**first, "team_id": None, "role": "viewer", "disabled_at": after["disabled_at"]}
    assert after["disabled_at"] is not None and entries[2] == ("user.delete", after, None)


async def _set_key_user(gateway: Gateway, secret: str, user_id: str) -> None:
    async with gateway.runtime.sessions.begin() as session:
        await session.execute(update(ApiKey).where(ApiKey.prefix == secret[:12]).values(user_id=uuid.UUID(user_id)))


async def _counts(gateway: Gateway) -> tuple[int, ...]:
    counts = []
    async with gateway.runtime.sessions() as session:
        for model in (Organization, Team, User, AdminToken, AuditEntry):
            counts.append(len((await session.scalars(select(model.id))).all()))
    return tuple(counts)


async def test_a_delete_while_something_refers_to_the_object_is_a_409_naming_it(gateway: Gateway) -> None:
    async with gateway.http() as http:
        org = await _org(http)
        team = await _team(http, org)
        user = await _user(http, org, team=team["id"])
        secret = await gateway.create_key("owned", org=org["name"], team=team["name"])
        await _set_key_user(gateway, secret, user["id"])
        before = await _counts(gateway)
        refused_org = await _error(await http.delete(f"/admin/orgs/{org['id']}", headers=ADMIN), 409)
        assert "1 team" in refused_org["message"] and "1 user" in refused_org["message"]
        assert "1 API key" in refused_org["message"]
        refused_team = await _error(
            await http.delete(f"/admin/orgs/{org['id']}/teams/{team['id']}", headers=ADMIN), 409
        )
        assert "1 user" in refused_team["message"] and "1 API key" in refused_team["message"]
        refused_user = await _error(await http.delete(f"/admin/users/{user['id']}", headers=ADMIN), 409)
        assert "1 API key" in refused_user["message"]
        assert await _counts(gateway) == before
        for path in (
            f"/admin/orgs/{org['id']}",
            f"/admin/orgs/{org['id']}/teams/{team['id']}",
            f"/admin/users/{user['id']}",
        ):
            assert (await http.get(path, headers=ADMIN)).status_code == 200
        # Revoked, a key still names its owners (its history does): still refused.
        await gateway.runtime.keys.revoke(secret[:12])
        refused = await _error(await http.delete(f"/admin/users/{user['id']}", headers=ADMIN), 409)
        assert "(1 revoked)" in refused["message"]
        # A user without keys goes, and then its team and organization once nothing else refers to them.
        lone = await _user(http, org)
        assert (await http.delete(f"/admin/users/{lone['id']}", headers=ADMIN)).status_code == 200


async def test_a_user_with_tokens_is_deleted_with_them(gateway: Gateway) -> None:
    async with gateway.http() as http:
        org = await _org(http)
        user = await _user(http, org, role="viewer")
        token = await _token(http, user)
        assert (await http.delete(f"/admin/users/{user['id']}", headers=ADMIN)).status_code == 200
        assert (await http.get("/admin/orgs", headers=_bearer(token))).status_code == 401
        assert (await http.delete(f"/admin/orgs/{org['id']}", headers=ADMIN)).status_code == 200
    async with gateway.runtime.sessions() as session:
        assert (
            await session.scalars(select(AdminToken).where(AdminToken.user_id == uuid.UUID(user["id"])))
        ).all() == []
        deleted = await session.scalars(select(AuditEntry).where(AuditEntry.action == "admin_token.delete"))
        assert user["id"] in [e.before["user_id"] for e in deleted.all() if e.before]


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/admin/orgs", {"name": ""}, "name"),
        ("/admin/orgs", {"name": "   "}, "name"),
        ("/admin/orgs", {"name": "x" * 201}, "name"),
        ("/admin/orgs", {"name": "a\u0000b"}, "name"),
        ("/admin/orgs", {"name": "ok", "colour": "red"}, "colour"),
        ("/admin/orgs", {"name": "ok", "description": "x" * 2001}, "description"),
        ("/admin/orgs", {}, "name"),
        ("{org}/teams", {"name": " "}, "name"),
        ("{org}/teams", {"name": 5}, "name"),
        ("/admin/users", {"email": "nope", "org": "{org}"}, "email"),
        ("/admin/users", {"email": "a b@example.com", "org": "{org}"}, "email"),
        ("/admin/users", {"email": "x@example.com"}, "org"),
        ("/admin/users", {"email": "x@example.com", "org": "{org}", "role": "superuser"}, "role"),
        ("/admin/users", {"email": "x@example.com", "org": "{org}", "role": "boss"}, "role"),
        ("/admin/users", {"email": "x@example.com", "org": "{org}", "role": "team_admin"}, "team"),
        ("/admin/users", {"email": "x@example.com", "org": "{org}", "name": ""}, "name"),
        ("{user}/tokens", {}, "name"),
        ("{user}/tokens", {"name": "t", "expires_in": "3x"}, "expires_in"),
        ("{user}/tokens", {"name": "t", "expires_in": "3d", "expires_at": "2030-01-01T00:00:00Z"}, "expires_in"),
        ("{user}/tokens", {"name": "t", "expires_at": "2030-01-01T00:00:00"}, "expires_at"),
    ],
)
async def test_bad_input_is_a_400_naming_the_field_and_changes_nothing(
    gateway: Gateway, path: str, body: dict[str, Any], param: str
) -> None:
    async with gateway.http() as http:
        org = await _org(http)
        user = await _user(http, org, role="viewer")
        path = path.replace("{org}", f"/admin/orgs/{org['id']}").replace("{user}", f"/admin/users/{user['id']}")
        body = {k: (org["name"] if v == "{org}" else v) for k, v in body.items()}
        before = await _counts(gateway)
        error = await _error(await http.post(path, headers=ADMIN, json=body), 400)
        assert error["param"] == param, error
        assert await _counts(gateway) == before
        assert (await http.get(f"/admin/users/{user['id']}/tokens", headers=ADMIN)).json()["data"] == []


async def test_bad_updates_are_400s_naming_the_field(gateway: Gateway) -> None:
    async with gateway.http() as http:
        org = await _org(http)
        team = await _team(http, org)
        user = await _user(http, org, role="team_admin", team=team["id"])
        kept = await http.patch(f"/admin/users/{user['id']}", headers=ADMIN, json={"team": None})
        assert (await _error(kept, 409))["param"] == "team"  # a team admin keeps a team
        for body, param in (
            ({"role": "team_admin", "team": None}, "team"),
            ({"role": "superuser"}, "role"),
            ({"email": "@"}, "email"),
            ({"disabled": "yes"}, "disabled"),
            ({"org": org["id"]}, "org"),  # a user stays in their organization
        ):
            error = await _error(await http.patch(f"/admin/users/{user['id']}", headers=ADMIN, json=body), 400)
            assert error["param"] == param, (body, error)
        bad_name = await http.patch(f"/admin/orgs/{org['id']}", headers=ADMIN, json={"name": None})
        assert (await _error(bad_name, 400))["param"] == "name"
        assert (await http.get(f"/admin/users/{user['id']}", headers=ADMIN)).json() == user
        assert [e[0] for e in await _audit(gateway, user["id"])] == ["user.create"]


async def test_unknown_objects_are_404s(gateway: Gateway) -> None:
    missing = str(uuid.uuid4())
    async with gateway.http() as http:
        org = await _org(http)
        user = await _user(http, org)
        for method, path in (
            ("GET", f"/admin/orgs/{missing}"),
            ("PATCH", "/admin/orgs/no-such-org"),
            ("DELETE", f"/admin/orgs/{missing}"),
            ("GET", f"/admin/orgs/{missing}/teams"),
            ("GET", f"/admin/orgs/{org['id']}/teams/nope"),
            ("DELETE", f"/admin/orgs/{org['id']}/teams/{missing}"),
            ("GET", "/admin/users/nobody@example.com"),
            ("PATCH", f"/admin/users/{missing}"),
            ("DELETE", f"/admin/users/{missing}"),
            ("GET", f"/admin/users/{missing}/tokens"),
            ("POST", f"/admin/users/{user['id']}/tokens/{missing}/revoke"),
            ("DELETE", f"/admin/users/{user['id']}/tokens/sk-gwa-nope"),
        ):
            body = {} if method == "PATCH" else None
            response = await http.request(method, path, headers=ADMIN, json=body)
            assert response.status_code == 404, (method, path, response.text)
        unknown_org = await http.post("/admin/users", headers=ADMIN, json={"email": "z@example.com", "org": missing})
        assert (await _error(unknown_org, 404))["param"] == "org"
        unknown_team = await http.post(
            "/admin/users", headers=ADMIN, json={"email": "z@example.com", "org": org["id"], "team": "nope"}
        )
        assert (await _error(unknown_team, 404))["param"] == "team"


async def test_an_org_admin_sees_and_touches_only_their_own_organization(gateway: Gateway) -> None:
    async with gateway.http() as http:
        mine, theirs = await _org(http), await _org(http)
        their_team = await _team(http, theirs)
        their_user = await _user(http, theirs, role="viewer")
        admin = _bearer(await _token(http, await _user(http, mine, role="org_admin")))
        listed = (await http.get("/admin/orgs", headers=admin)).json()["data"]
        assert [o["id"] for o in listed] == [mine["id"]]
        users = (await http.get("/admin/users", headers=admin)).json()["data"]
        assert {u["org_id"] for u in users} == {mine["id"]}
        for method, path, body in (
            ("GET", f"/admin/orgs/{theirs['id']}", None),
            ("PATCH", f"/admin/orgs/{theirs['id']}", {"description": "mine now"}),
            ("GET", f"/admin/orgs/{theirs['id']}/teams", None),
            ("GET", f"/admin/orgs/{theirs['id']}/teams/{their_team['id']}", None),
            ("POST", f"/admin/orgs/{theirs['id']}/teams", {"name": "intruders"}),
            ("DELETE", f"/admin/orgs/{theirs['id']}/teams/{their_team['id']}", None),
            ("GET", "/admin/users?org=" + theirs["id"], None),
            ("GET", f"/admin/users/{their_user['id']}", None),
            ("PATCH", f"/admin/users/{their_user['id']}", {"role": "org_admin"}),
            ("DELETE", f"/admin/users/{their_user['id']}", None),
            ("POST", "/admin/users", {"email": f"{_name('x')}@example.com", "org": theirs["id"]}),
            ("GET", f"/admin/users/{their_user['id']}/tokens", None),
            ("POST", f"/admin/users/{their_user['id']}/tokens", {"name": "mine"}),
            ("POST", "/admin/orgs", {"name": _name("new")}),  # only the superuser creates organizations
            ("DELETE", f"/admin/orgs/{mine['id']}", None),  # and deletes them
        ):
            response = await http.request(method, path, headers=admin, json=body)
            assert response.status_code == 403, (method, path, response.text)
        assert (await http.get(f"/admin/users/{their_user['id']}", headers=ADMIN)).json() == their_user
        assert (await http.get(f"/admin/orgs/{theirs['id']}/teams", headers=ADMIN)).json()["data"] == [their_team]
        # In their own organization they manage teams and users, up to their own role.
        team = await _post(http, f"/admin/orgs/{mine['id']}/teams", {"name": "ours"}, admin)
        peer = {"email": f"{_name('peer')}@example.com", "org": mine["name"], "role": "org_admin"}
        assert (await _post(http, "/admin/users", peer, admin))["role"] == "org_admin"
        lead = {"email": f"{_name('lead')}@example.com", "org": mine["id"], "role": "team_admin", "team": "ours"}
        assert (await _post(http, "/admin/users", lead, admin))["team_id"] == team["id"]
        boss = await http.post("/admin/users", headers=admin, json={**peer, "email": "b@x.y", "role": "superuser"})
        assert (await _error(boss, 400))["param"] == "role"
    async with gateway.runtime.sessions() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.object_id == team["id"]))
    assert entry is not None and entry.role == "org_admin" and entry.actor.endswith("@example.com")


async def test_a_team_admin_reads_only_their_team_and_a_viewer_only_reads(gateway: Gateway) -> None:
    async with gateway.http() as http:
        org = await _org(http)
        team, other = await _team(http, org), await _team(http, org)
        lead = await _user(http, org, role="team_admin", team=team["id"])
        member = await _user(http, org, team=team["id"])
        outsider = await _user(http, org, team=other["id"])
        viewer_user = await _user(http, org, role="viewer")
        as_lead = _bearer(await _token(http, lead))
        teams = (await http.get(f"/admin/orgs/{org['id']}/teams", headers=as_lead)).json()["data"]
        assert [t["id"] for t in teams] == [team["id"]]
        users = (await http.get("/admin/users", headers=as_lead)).json()["data"]
        assert sorted(u["id"] for u in users) == sorted([lead["id"], member["id"]])
        assert (await http.get(f"/admin/orgs/{org['id']}", headers=as_lead)).status_code == 200
        assert (await http.get(f"/admin/orgs/{org['id']}/teams/{other['id']}", headers=as_lead)).status_code == 403
        assert (await http.get(f"/admin/users/{outsider['id']}", headers=as_lead)).status_code == 403
        assert (await http.get(f"/admin/users/{member['id']}", headers=as_lead)).status_code == 200
        made = await http.post(f"/admin/orgs/{org['id']}/teams", headers=as_lead, json={"name": "mine"})
        assert made.status_code == 403
        as_viewer = _bearer(await _token(http, viewer_user))
        everyone = (await http.get("/admin/users", headers=as_viewer, params={"org": org["id"]})).json()["data"]
        assert len(everyone) == 4
        assert (await http.get(f"/admin/orgs/{org['id']}/teams", headers=as_viewer)).json()["data"] != []
        for method, path, body in (
            ("PATCH", f"/admin/users/{member['id']}", {"name": "x"}),
            ("POST", "/admin/users", {"email": "v@example.com", "org": org["id"]}),
            ("PATCH", f"/admin/orgs/{org['id']}", {"description": "x"}),
            ("GET", f"/admin/users/{member['id']}/tokens", None),
        ):
            assert (await http.request(method, path, headers=as_viewer, json=body)).status_code == 403, path


async def test_a_token_acts_with_its_users_role_and_stops_at_once_when_revoked(gateway: Gateway) -> None:
    async with gateway.http() as http:
        org = await _org(http)
        user = await _user(http, org, role="org_admin")
        created = await http.post(
            f"/admin/users/{user['email']}/tokens", headers=ADMIN, json={"name": "ci", "expires_in": "30d"}
        )
        assert created.status_code == 201, created.text
        secret, info = created.json()["token"], created.json()["info"]
        assert secret.startswith("sk-gwa-") and info["prefix"] == secret[:13] and info["user_id"] == user["id"]
        expires = datetime.fromisoformat(info["expires_at"])
        assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)
        token = _bearer(secret)
        assert (
            await http.patch(f"/admin/orgs/{org['id']}", headers=token, json={"description": "by token"})
        ).status_code == 200
        listed = (await http.get(f"/admin/users/{user['id']}/tokens", headers=ADMIN)).json()["data"]
        assert [t["id"] for t in listed] == [info["id"]] and listed[0]["last_used_at"] is not None
        assert secret not in str(listed) and "hash" not in str(listed)
        # The role is read at each use: demoted to viewer, the token only reads.
        await http.patch(f"/admin/users/{user['id']}", headers=ADMIN, json={"role": "viewer"})
        assert (
            await http.patch(f"/admin/orgs/{org['id']}", headers=token, json={"description": "x"})
        ).status_code == 403
        assert (await http.get(f"/admin/orgs/{org['id']}", headers=token)).status_code == 200
        revoked = await http.post(f"/admin/users/{user['id']}/tokens/{info['prefix']}/revoke", headers=ADMIN)
        assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
        assert (await http.get(f"/admin/orgs/{org['id']}", headers=token)).status_code == 401
        again = await http.delete(f"/admin/users/{user['id']}/tokens/{info['id']}", headers=ADMIN)
        assert again.json()["revoked_at"] == revoked.json()["revoked_at"]  # the first revocation holds
    entries = await _audit(gateway, info["id"])
    assert [e[0] for e in entries] == ["admin_token.create", "admin_token.revoke"]
    assert entries[0][2] == {
        "id": info["id"],
        "user_id": user["id"],
        "prefix": info["prefix"],
        "name": "ci",
        "expires_at": entries[0][2]["expires_at"] if entries[0][2] else None,
        "revoked_at": None,
    }
    assert entries[1][2] is not None and entries[1][2]["revoked_at"] is not None
    assert secret not in str(entries) and secret[13:] not in str(entries)


async def test_expired_tokens_disabled_users_and_users_without_a_role_get_no_access(gateway: Gateway) -> None:
    async with gateway.http() as http:
        org = await _org(http)
        user = await _user(http, org, role="viewer")
        past = await _token(http, user, expires_at="2001-01-01T00:00:00Z")
        assert (await http.get("/admin/orgs", headers=_bearer(past))).status_code == 401
        live = await _token(http, user)
        assert (await http.get("/admin/orgs", headers=_bearer(live))).status_code == 200
        await http.patch(f"/admin/users/{user['id']}", headers=ADMIN, json={"disabled": True})
        assert (await http.get("/admin/orgs", headers=_bearer(live))).status_code == 401
        refused = await http.post(f"/admin/users/{user['id']}/tokens", headers=ADMIN, json={"name": "t"})
        assert "disabled" in (await _error(refused, 409))["message"]
        nobody = await _user(http, org)
        no_role = await http.post(f"/admin/users/{nobody['id']}/tokens", headers=ADMIN, json={"name": "t"})
        assert "no role" in (await _error(no_role, 409))["message"]


async def test_a_renamed_org_or_team_is_what_its_keys_carry_at_once(gateway: Gateway) -> None:
    """Limits name organizations and teams: a key's cached view must follow a rename."""
    async with gateway.http() as http:
        org = await _org(http)
        team = await _team(http, org)
        secret = await gateway.create_key("renamed", org=org["name"], team=team["name"])
        presented = {"authorization": f"Bearer {secret}"}
        seen = await gateway.runtime.auth.authenticate(presented)
        assert (seen.org_name, seen.team_name) == (org["name"], team["name"])
        await http.patch(f"/admin/orgs/{org['id']}", headers=ADMIN, json={"name": org["name"] + "-new"})
        await http.patch(f"/admin/orgs/{org['id']}/teams/{team['id']}", headers=ADMIN, json={"name": "renamed"})
        seen = await gateway.runtime.auth.authenticate(presented)
        assert (seen.org_name, seen.team_name) == (org["name"] + "-new", "renamed")
