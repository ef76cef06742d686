"""The role matrix (issue 9): every admin route, called by each role, and by admins of another team
and of another organization, is refused (403) exactly where ``gateway.access.roles.PERMISSIONS``
says so, and only there.

The routes come from the app itself, so a new admin route fails this test until ``ROUTES`` says
how to call it. Each call either is refused with 403 or is not (its own answer: 200, 404, 409, ...
is the route's business, tested elsewhere); never a 401 or a 500 for a valid principal. Calls
expected to be refused go first, so an allowed one (a delete, say) cannot turn a later refusal
into a 404.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from harness import ADMIN_KEY, Gateway
from sqlalchemy import select

from gateway.access.roles import PERMISSIONS, Action, Role, Scope, allowed
from gateway.app import create_app
from gateway.db.models import AdminToken, AuditEntry, User
from gateway.directory.tokens import new_token
from gateway.keys.secrets import hash_secret, visible_prefix
from gateway.settings import Settings


@dataclass(frozen=True)
class Who:
    label: str
    role: Role
    org: str
    team: str | None = None


@dataclass
class World:
    """Two organizations; the first with teams red and blue. The objects called are red's."""

    org: str
    other_org: str
    tokens: dict[str, str]
    ids: dict[str, str]


PRINCIPALS = [
    Who("superuser", Role.SUPERUSER, "one"),
    Who("org admin", Role.ORG_ADMIN, "one"),
    Who("team admin (red)", Role.TEAM_ADMIN, "one", "red"),
    Who("team admin (blue)", Role.TEAM_ADMIN, "one", "blue"),
    Who("viewer", Role.VIEWER, "one"),
    Who("org admin (other org)", Role.ORG_ADMIN, "two"),
    Who("viewer (other org)", Role.VIEWER, "two"),
]


@dataclass(frozen=True)
class Call:
    """How to call a route on red's objects: its path parameters, its body, and whether it acts on
    one object of red's (scope checked) or on a collection (narrowed, never refused for scope)."""

    params: tuple[str, ...] = ()
    body: Any = None
    on_object: bool = True
    in_org: bool = False
    """A collection within red's organization: other organizations are refused, teams narrowed."""


def _red_limit(world: World) -> dict[str, Any]:
    return {"scope": "key", "name": world.ids["key_prefix"], "requests_per_minute": 100}


ROUTES: dict[tuple[str, str], Call] = {
    ("GET", "/admin/keys"): Call(on_object=False),
    ("POST", "/admin/keys"): Call(body=lambda w: {"name": "matrix", "team": "red", "org": w.org}),
    ("GET", "/admin/keys/{key_id}"): Call(("key_id",)),
    ("PATCH", "/admin/keys/{key_id}"): Call(("key_id",), body={"name": "renamed"}),
    ("POST", "/admin/keys/{key_id}/rotate"): Call(("key_id",), body={"grace_seconds": 60}),
    ("PUT", "/admin/keys/{key_id}/limits"): Call(("key_id",), body={"requests_per_minute": 100}),
    ("DELETE", "/admin/keys/{key_id}"): Call(("key_id",)),
    ("POST", "/admin/keys/{key_id}/revoke"): Call(("key_id",)),
    ("GET", "/admin/quotas/usage"): Call(on_object=False),
    ("GET", "/admin/quotas/limits"): Call(on_object=False),
    ("PUT", "/admin/quotas/limits"): Call(body=_red_limit),
    ("DELETE", "/admin/quotas/limits/{limit_id}"): Call(("limit_id",)),
    ("GET", "/admin/orgs"): Call(on_object=False),
    ("POST", "/admin/orgs"): Call(body=lambda w: {"name": f"matrix-new-{uuid.uuid4().hex[:8]}"}, on_object=False),
    ("GET", "/admin/orgs/{org}"): Call(("org",)),
    ("PATCH", "/admin/orgs/{org}"): Call(("org",), body={"description": "matrix"}),
    ("DELETE", "/admin/orgs/{org}"): Call(("org",)),
    ("GET", "/admin/orgs/{org}/teams"): Call(("org",), in_org=True),
    ("POST", "/admin/orgs/{org}/teams"): Call(("org",), body=lambda w: {"name": f"t-{uuid.uuid4().hex[:8]}"}),
    ("GET", "/admin/orgs/{org}/teams/{team}"): Call(("org", "team")),
    ("PATCH", "/admin/orgs/{org}/teams/{team}"): Call(("org", "team"), body={"description": "matrix"}),
    ("DELETE", "/admin/orgs/{org}/teams/{team}"): Call(("org", "team")),
    ("GET", "/admin/users"): Call(on_object=False),
    ("POST", "/admin/users"): Call(
        body=lambda w: {"email": f"{uuid.uuid4().hex[:8]}@example.com", "org": w.org, "team": "red", "role": "viewer"}
    ),
    ("GET", "/admin/users/{user}"): Call(("user",)),
    ("PATCH", "/admin/users/{user}"): Call(("user",), body={"name": "renamed"}),
    ("DELETE", "/admin/users/{user}"): Call(("user",)),
    ("GET", "/admin/users/{user}/tokens"): Call(("user",)),
    ("POST", "/admin/users/{user}/tokens"): Call(("user",), body={"name": "matrix"}),
    ("POST", "/admin/users/{user}/tokens/{token_id}/revoke"): Call(("user", "token_id")),
    ("DELETE", "/admin/users/{user}/tokens/{token_id}"): Call(("user", "token_id")),
    ("GET", "/admin/backends"): Call(on_object=False),
    ("POST", "/admin/backends"): Call(
        body=lambda w: {"name": f"matrix-{uuid.uuid4().hex[:8]}", "kind": "openai", "base_url": "http://127.0.0.1:9/v1"}
    ),
    ("GET", "/admin/backends/{backend}"): Call(("backend",)),
    ("PATCH", "/admin/backends/{backend}"): Call(("backend",), body={"timeout_seconds": 5}),
    ("DELETE", "/admin/backends/{backend}"): Call(("backend",)),
    ("GET", "/admin/audit"): Call(on_object=False),
    ("GET", "/admin/audit/{entry_id}"): Call(("entry_id",)),
    ("GET", "/admin/models"): Call(on_object=False),
    ("POST", "/admin/models"): Call(body=lambda w: {"name": f"matrix-{uuid.uuid4().hex[:8]}"}),
    ("GET", "/admin/models/{model}"): Call(("model",)),
    ("POST", "/admin/models/{model}/versions"): Call(("model",), body=lambda w: {"backend": "fake"}),
    ("GET", "/admin/models/{model}/versions/{number}"): Call(("model", "number")),
    ("POST", "/admin/models/{model}/versions/{number}/promote"): Call(("model", "number"), lambda w: {"to": "active"}),
    ("POST", "/admin/models/{model}/versions/{number}/retire"): Call(("model", "number")),
    ("POST", "/admin/models/{model}/rollback"): Call(("model",)),
    ("GET", "/admin/models/{model}/diff"): Call(("model",)),
    ("GET", "/admin/models/{model}/history"): Call(("model",)),
}


def _routes() -> list[tuple[str, str, Action]]:
    """Every admin route of the app: (method, path with bare parameter names, its action)."""
    found = []
    for route in create_app(Settings()).routes:
        if not route.path.startswith("/admin"):
            continue
        path = route.path
        for part in path.split("/"):
            if part.startswith("{") and ":" in part:
                path = path.replace(part, part.split(":")[0] + "}")
        for handler in getattr(route, "route_handlers", []):
            for method in handler.http_methods:
                if method != "OPTIONS":
                    found.append((method, path, handler.opt["action"]))
    # Deletes last, the deepest first (a user's token before the user).
    return sorted(found, key=lambda r: (r[0] == "DELETE", -r[1].count("/") if r[0] == "DELETE" else 0, r[1], r[0]))


def expected(who: Who, action: Action, call: Call) -> bool:
    """True when the table lets ``who`` do ``action`` on red's object (or the collection)."""
    if not allowed(who.role, action):
        return False
    scope = PERMISSIONS[action][1]
    if who.role is Role.SUPERUSER or scope is Scope.GLOBAL or not call.on_object:
        return True
    if who.org != "one":
        return False
    if call.in_org:
        return True
    return not (scope is Scope.TEAM and who.role is Role.TEAM_ADMIN and who.team != "red")


async def _world(gateway: Gateway) -> World:
    suffix = uuid.uuid4().hex[:8]
    orgs = {"one": f"matrix-one-{suffix}", "two": f"matrix-two-{suffix}"}
    runtime = gateway.runtime
    red = await runtime.keys.create("red key", org=orgs["one"], team="red")
    blue = await runtime.keys.create("blue key", org=orgs["one"], team="blue")
    await runtime.keys.create("other org key", org=orgs["two"], team="red")
    teams = {("one", "red"): red.key.team_id, ("one", "blue"): blue.key.team_id}
    org_ids = {"one": red.key.org_id}
    other = await runtime.keys.create("other org anchor", org=orgs["two"])
    org_ids["two"] = other.key.org_id
    tokens = {"superuser": ADMIN_KEY}
    async with runtime.sessions.begin() as session:
        for who in PRINCIPALS[1:]:
            user = User(
                id=uuid.uuid4(),
                org_id=org_ids[who.org],
                team_id=teams[(who.org, who.team)] if who.team else None,
                email=f"{who.label.replace(' ', '.').replace('(', '').replace(')', '')}.{suffix}@example.com",
                role=who.role.value,
            )
            token = new_token()
            session.add(user)
            await session.flush()
            session.add(
                AdminToken(user_id=user.id, prefix=visible_prefix(token), secret_hash=hash_secret(token), name="m")
            )
            tokens[who.label] = token
        # The user and token the calls act on: a viewer in team red, no principal of the matrix.
        target = User(id=uuid.uuid4(), org_id=org_ids["one"], team_id=teams[("one", "red")], role="viewer")
        target.email = f"target.{suffix}@example.com"
        session.add(target)
        await session.flush()
        target_token = AdminToken(
            user_id=target.id, prefix="sk-gwa-target", secret_hash=hash_secret(new_token()), name="t"
        )
        session.add(target_token)
        await session.flush()
    ids = {"key_id": str(red.key.id), "key_prefix": red.key.prefix, "org": orgs["one"], "team": "red"}
    ids |= {"user": str(target.id), "token_id": str(target_token.id)}
    world = World(orgs["one"], orgs["two"], tokens, ids)
    async with gateway.http() as http:
        limit = await http.put(
            "/admin/quotas/limits", headers={"Authorization": f"Bearer {ADMIN_KEY}"}, json=_red_limit(world)
        )
        assert limit.status_code in (200, 201), limit.text
        world.ids["limit_id"] = limit.json()["id"]
        backend = await http.post(
            "/admin/backends",
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            json={"name": f"matrix-{suffix}", "kind": "openai", "base_url": "http://127.0.0.1:9/v1"},
        )
        assert backend.status_code == 201, backend.text
        world.ids["backend"] = f"matrix-{suffix}"
    async with runtime.sessions() as session:
        created = select(AuditEntry.id).where(
            AuditEntry.object_id == str(red.key.id), AuditEntry.action == "key.create"
        )
        entry_id = await session.scalar(created)
    world.ids |= {"model": "chat-model", "number": "1", "entry_id": str(entry_id)}
    return world


async def test_every_admin_route_is_in_the_matrix() -> None:
    missing = [(method, path) for method, path, _ in _routes() if (method, path) not in ROUTES]
    assert not missing, f"say in ROUTES how to call: {missing}"


async def test_each_role_gets_exactly_what_the_table_allows(gateway: Gateway) -> None:
    world = await _world(gateway)
    wrong: list[str] = []
    async with gateway.http() as http:
        for method, path, action in _routes():
            call = ROUTES[(method, path)]
            url = path
            for name in call.params:
                url = url.replace("{" + name + "}", world.ids[name])
            for who in sorted(PRINCIPALS, key=lambda w: expected(w, action, call)):
                body = call.body(world) if callable(call.body) else call.body
                headers = {"Authorization": f"Bearer {world.tokens[who.label]}"}
                response = await http.request(method, url, headers=headers, json=body)
                want = expected(who, action, call)
                if response.status_code in (401, 500) or (response.status_code == 403) == want:
                    wrong.append(
                        f"{who.label}: {method} {path} ({action}) -> {response.status_code}, "
                        f"expected {'allowed' if want else '403'}: {response.text[:160]}"
                    )
    assert not wrong, "\n".join(wrong)
