"""Who may set, remove and read which limits: a team admin their own team's (and its keys'), an org
admin their organization's; a limit that reaches every organization is the superuser's. A refused
change changes nothing and writes no audit entry. A limit set is a change like any other: it raises
the generation and this replica serves with it before the answer."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from harness import ADMIN_KEY, Gateway
from sqlalchemy import func, select
from test_audit import entries, token_for

from gateway.audit.changes import current_generation
from gateway.db.models import AuditEntry, QuotaLimit

ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}


@dataclass
class World:
    """Org A with teams ``shared`` and ``own``, org B with teams ``shared`` (the same name) and ``b``."""

    org_a: str
    org_b: str
    shared: str
    own: str
    team_b: str
    key_a_shared: str
    key_a_own: str
    key_b: str
    team_admin_own: dict[str, str]
    org_admin_a: dict[str, str]
    org_admin_b: dict[str, str]
    viewer_b: dict[str, str]


async def _world(gateway: Gateway) -> World:
    tag = uuid.uuid4().hex[:8]
    org_a, org_b, shared, own, team_b = (f"{name}-{tag}" for name in ("org-a", "org-b", "shared", "own", "team-b"))
    keys = gateway.runtime.keys
    a_shared = (await keys.create("a-shared", org=org_a, team=shared)).key
    a_own = (await keys.create("a-own", org=org_a, team=own)).key
    await keys.create("b-shared", org=org_b, team=shared)
    b = (await keys.create("b", org=org_b, team=team_b)).key
    return World(
        org_a,
        org_b,
        shared,
        own,
        team_b,
        a_shared.prefix,
        a_own.prefix,
        b.prefix,
        await token_for(gateway, "team_admin", a_own.org_id, a_own.team_id),
        await token_for(gateway, "org_admin", a_own.org_id),
        await token_for(gateway, "org_admin", b.org_id),
        await token_for(gateway, "viewer", b.org_id),
    )


async def _put(http: httpx.AsyncClient, headers: dict[str, str], scope: str, name: str) -> httpx.Response:
    return await http.put(
        "/admin/quotas/limits", headers=headers, json={"scope": scope, "name": name, "requests_per_minute": 7}
    )


async def _counts(gateway: Gateway) -> tuple[int, int, int]:
    async with gateway.runtime.sessions() as session:
        limits = await session.scalar(select(func.count()).select_from(QuotaLimit))
        audited = await session.scalar(select(func.count()).select_from(AuditEntry))
    return int(limits or 0), int(audited or 0), await current_generation(gateway.runtime.sessions)


@pytest.mark.parametrize(
    ("who", "scope", "name", "status"),
    [
        ("team_admin_own", "key", "key_a_shared", 403),  # another team's key
        ("team_admin_own", "key", "key_b", 403),  # another organization's key
        ("team_admin_own", "team", "shared", 403),  # another team (in two organizations)
        ("team_admin_own", "team", "team_b", 404),  # org B's team: read as their organization's, which has none
        ("team_admin_own", "org", "org_a", 403),  # their organization, but not their team
        ("team_admin_own", "user", "alice", 403),
        ("team_admin_own", "key", "*", 403),
        ("org_admin_b", "key", "key_a_own", 403),  # another organization's key
        ("org_admin_b", "org", "org_a", 403),
        ("org_admin_b", "team", "own", 404),  # org A's team: read as org B's, which has none
        ("org_admin_b", "team", "no-such-team", 404),
        ("org_admin_b", "team", "org_a/own", 403),  # org A's team, named as such
        ("viewer_b", "team", "team_b", 403),  # read only
    ],
)
async def test_a_limit_outside_the_principals_scope_is_refused_and_changes_nothing(
    gateway: Gateway, who: str, scope: str, name: str, status: int
) -> None:
    world = await _world(gateway)
    headers: dict[str, str] = getattr(world, who)
    before = await _counts(gateway)
    if "/" in name:
        org, team = name.split("/")
        name = f"{getattr(world, org)}/{getattr(world, team)}"
    async with gateway.http() as http:
        response = await _put(http, headers, scope, getattr(world, name, name))
    assert response.status_code == status, response.text
    assert response.json()["error"]["param"] == ("name" if status == 404 else None)
    assert await _counts(gateway) == before


@pytest.mark.parametrize(
    ("who", "scope", "name"),
    [
        ("team_admin_own", "key", "key_a_own"),
        ("team_admin_own", "team", "own"),
        ("org_admin_a", "key", "key_a_shared"),
        ("org_admin_a", "team", "own"),
        ("org_admin_a", "org", "org_a"),
        ("org_admin_b", "team", "team_b"),
        ("org_admin_b", "org", "org_b"),
        # Bare names reach every organization; an admin's are written as their organization's.
        ("org_admin_b", "team", "shared"),  # org A has a team of that name too: this one is B's
        ("org_admin_b", "team", "*"),
        ("org_admin_b", "user", "alice"),
        ("org_admin_a", "key", "*"),
    ],
)
async def test_a_limit_inside_the_principals_scope_is_set_audited_and_removed(
    gateway: Gateway, who: str, scope: str, name: str
) -> None:
    world = await _world(gateway)
    headers: dict[str, str] = getattr(world, who)
    target = getattr(world, name, name)
    if scope in ("team", "user") or name == "*":
        target = f"{world.org_b if who == 'org_admin_b' else world.org_a}/{target}"
    async with gateway.http() as http:
        response = await _put(http, headers, scope, getattr(world, name, name))
        assert response.status_code == 200, response.text
        assert response.json()["name"] == target
        limit_id = response.json()["id"]
        assert gateway.runtime.live.current.generation == await current_generation(gateway.runtime.sessions)
        listed = (await http.get("/admin/quotas/limits", headers=headers)).json()["api"]
        assert limit_id in {limit["id"] for limit in listed}
        removed = await http.delete(f"/admin/quotas/limits/{limit_id}", headers=headers)
        assert removed.status_code == 200, removed.text
        audited = await entries(http, headers if who != "team_admin_own" else ADMIN, object_id=limit_id)
    assert [e["action"] for e in audited] == ["limit.remove", "limit.set"]
    assert {e["source"] for e in audited} == {"api"} and {e["role"] for e in audited} == {who.rsplit("_", 1)[0]}
    assert audited[1]["after"] == {"id": limit_id, "scope": scope, "name": target, "requests_per_minute": 7}


async def test_removing_and_reading_another_scopes_limits(gateway: Gateway) -> None:
    world = await _world(gateway)
    async with gateway.http() as http:
        on_a = (await _put(http, ADMIN, "key", world.key_a_shared)).json()["id"]
        on_b = (await _put(http, ADMIN, "team", world.team_b)).json()["id"]
        everyone = (await _put(http, ADMIN, "key", "*")).json()["id"]
        before = await _counts(gateway)
        for headers, limit_id in ((world.team_admin_own, on_a), (world.org_admin_b, on_a), (world.org_admin_a, on_b)):
            refused = await http.delete(f"/admin/quotas/limits/{limit_id}", headers=headers)
            assert refused.status_code == 403, refused.text
        assert await _counts(gateway) == before
        seen = {
            who: {limit["id"] for limit in (await http.get("/admin/quotas/limits", headers=headers)).json()["api"]}
            for who, headers in (("a", world.org_admin_a), ("own", world.team_admin_own), ("b", world.viewer_b))
        }
        usage_other = await http.get("/admin/quotas/usage", headers=world.team_admin_own, params={"key": world.key_b})
        usage_own = await http.get("/admin/quotas/usage", headers=world.team_admin_own, params={"key": world.key_a_own})
        usage_team = await http.get(
            "/admin/quotas/usage", headers=world.team_admin_own, params={"key": world.key_a_shared}
        )
        usage_org = await http.get("/admin/quotas/usage", headers=world.org_admin_a, params={"key": world.key_a_shared})
        for limit_id in (on_a, on_b, everyone):
            assert (await http.delete(f"/admin/quotas/limits/{limit_id}", headers=ADMIN)).status_code == 200
    assert on_a in seen["a"] and on_b not in seen["a"] and everyone in seen["a"]
    assert on_a not in seen["own"] and everyone in seen["own"]
    assert on_b in seen["b"] and on_a not in seen["b"]
    assert usage_other.status_code == 403 and usage_team.status_code == 403
    assert usage_own.status_code == 200 and usage_org.status_code == 200
    rows: list[dict[str, Any]] = usage_org.json()["data"]
    assert any(row["scope"] == "key" and row["name"] == world.key_a_shared for row in rows)


async def test_a_limit_on_what_no_longer_exists_is_removed_only_by_the_superuser(gateway: Gateway) -> None:
    world = await _world(gateway)
    async with gateway.http() as http:
        gone = (await _put(http, ADMIN, "team", f"gone-{world.own}")).json()["id"]  # no such team anywhere
        refused = await http.delete(f"/admin/quotas/limits/{gone}", headers=world.org_admin_a)
        listed = (await http.get("/admin/quotas/limits", headers=world.org_admin_a)).json()["api"]
        removed = await http.delete(f"/admin/quotas/limits/{gone}", headers=ADMIN)
    assert refused.status_code == 403 and removed.status_code == 200
    assert gone not in {limit["id"] for limit in listed}


async def test_an_admins_team_limit_stays_in_their_organization(gateway: Gateway) -> None:
    """Org A's admin limits team ``shared``: A's team of that name is limited, B's is not, nor
    will a team of that name that another organization makes later be."""
    world = await _world(gateway)
    async with gateway.http() as http:
        made = await _put(http, world.org_admin_a, "team", world.shared)
        assert made.status_code == 200 and made.json()["name"] == f"{world.org_a}/{world.shared}"
        later = (await gateway.runtime.keys.create("later", org=f"org-c-{world.shared}", team=world.shared)).key

        async def limited(key: str) -> bool:
            usage = await http.get("/admin/quotas/usage", headers=ADMIN, params={"key": key})
            assert usage.status_code == 200, usage.text
            return any(row["scope"] == "team" and row["name"] == made.json()["name"] for row in usage.json()["data"])

        assert await limited(world.key_a_shared)
        assert not await limited(world.key_b) and not await limited(later.prefix)
        b_shared = [k for k in await gateway.runtime.keys.list() if k.name == "b-shared" and k.org_id != later.org_id]
        assert not any([await limited(k.prefix) for k in b_shared if k.prefix])
        assert (
            await http.delete(f"/admin/quotas/limits/{made.json()['id']}", headers=world.org_admin_a)
        ).status_code == 200


async def test_limits_follow_a_renamed_organization_or_team(gateway: Gateway) -> None:
    world = await _world(gateway)
    async with gateway.http() as http:
        on_team = (await _put(http, world.org_admin_a, "team", world.own)).json()
        on_org = (await _put(http, world.org_admin_a, "org", world.org_a)).json()
        on_keys = (await _put(http, world.org_admin_a, "key", "*")).json()
        assert on_team["name"] == f"{world.org_a}/{world.own}" and on_keys["name"] == f"{world.org_a}/*"
        team = await http.patch(
            f"/admin/orgs/{world.org_a}/teams/{world.own}", headers=world.org_admin_a, json={"name": f"{world.own}-2"}
        )
        assert team.status_code == 200, team.text
        org = await http.patch(f"/admin/orgs/{world.org_a}", headers=ADMIN, json={"name": f"{world.org_a}-2"})
        assert org.status_code == 200, org.text
        names = {
            limit["id"]: limit["name"]
            for limit in (await http.get("/admin/quotas/limits", headers=ADMIN)).json()["api"]
        }
        usage = await http.get("/admin/quotas/usage", headers=ADMIN, params={"key": world.key_a_own})
        audited = await entries(http, ADMIN, object_id=on_team["id"])
    assert names[on_team["id"]] == f"{world.org_a}-2/{world.own}-2"
    assert names[on_org["id"]] == f"{world.org_a}-2" and names[on_keys["id"]] == f"{world.org_a}-2/*"
    rows = {(row["scope"], row["name"]) for row in usage.json()["data"]}
    assert {("team", names[on_team["id"]]), ("org", names[on_org["id"]]), ("key", names[on_keys["id"]])} <= rows
    assert [(e["before"]["name"], e["after"]["name"]) for e in audited[:2]] == [
        (f"{world.org_a}/{world.own}-2", f"{world.org_a}-2/{world.own}-2"),
        (f"{world.org_a}/{world.own}", f"{world.org_a}/{world.own}-2"),
    ]
