"""``/admin/keys``: create, list, show, update, rotate and revoke API keys.

Scope: a key is its organization's and team's. Org admins and viewers reach their organization's
keys, team admins their own team's; the superuser every key. A listing is narrowed to what the
caller may see; a key outside it is refused (403), and a write the caller may not make changes
nothing (the scope check runs inside the change's transaction)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import msgspec
from litestar import Request, delete, get, patch, post, put
from litestar.openapi.spec import Schema
from litestar.params import FromPath, FromQuery, JSONBody

from gateway.access.principal import Principal
from gateway.access.roles import Action, Role
from gateway.admin.auth import AdminController, actor_of, principal_of, runtime_of
from gateway.admin.quota_schemas import KeyLimitSpec, LimitView
from gateway.admin.quotas import may_write_limit
from gateway.admin.quotas import sets_a_limit_schema as _sets_a_limit
from gateway.admin.schemas import CreatedKey, CreateKey, KeyList, KeyView, RotateKey, UpdateKey
from gateway.keys.expiry import expires_after, expiry_of
from gateway.keys.service import DEFAULT_ORG, Authorize
from gateway.web.openapi import OptionalBody, constrained_body, error_responses, present

# What each route can answer besides success (403: the admin API is disabled, or out of scope).
_READ = error_responses(400, 401, 403, 503)
_BY_KEY = error_responses(400, 401, 403, 404, 503)
_WRITE_KEY = error_responses(400, 401, 403, 404, 409, 503)
_CREATE = error_responses(400, 401, 403, 404, 409, 503)


def _not_both_expiries() -> Schema:
    return Schema(schema_not=Schema(all_of=[present("expires_at"), present("expires_in")]))


def _scope(request: Request[Any, Any, Any], action: Action) -> Authorize:
    principal = principal_of(request)

    def authorize(org_id: Any, team_id: Any) -> None:
        principal.check(action, org_id, team_id)

    return authorize


class AdminKeysController(AdminController):
    path = "/admin/keys"

    @get("/", summary="List API keys (those the caller may see)", responses=_READ, opt={"action": Action.KEYS_READ})
    async def list_keys(self, request: Request[Any, Any, Any], include_revoked: FromQuery[bool] = True) -> KeyList:
        principal = principal_of(request)
        rows = await runtime_of(request).keys.list(
            include_revoked=include_revoked, org_id=principal.org_filter, team_id=principal.team_filter
        )
        return KeyList(data=[KeyView.of(r) for r in rows])

    @post(
        "/",
        summary="Create an API key; the secret is returned once",
        responses=_CREATE,
        operation_class=constrained_body(_not_both_expiries),
        opt={"action": Action.KEYS_WRITE},
    )
    async def create_key(self, request: Request[Any, Any, Any], data: JSONBody[CreateKey]) -> CreatedKey:
        principal = principal_of(request)
        created = await runtime_of(request).keys.create(
            data.name,
            models=data.models,
            expires_at=expiry_of(data.expires_at, data.expires_in),
            owner=data.owner,
            org=data.org or principal.org_id or DEFAULT_ORG,
            team=data.team or _own_team(principal),
            user=data.user,
            metadata=data.metadata,
            actor=actor_of(request),
            authorize=_scope(request, Action.KEYS_WRITE),
        )
        return CreatedKey(key=created.secret, info=KeyView.of(created.key))

    # The parameter is `key_id` (an id or a prefix), not `key`: `key` in a created key is its secret.
    @get(
        "/{key_id:str}",
        summary="Show an API key (by id or prefix)",
        responses=_BY_KEY,
        opt={"action": Action.KEYS_READ},
    )
    async def show_key(self, request: Request[Any, Any, Any], key_id: FromPath[str]) -> KeyView:
        row = await runtime_of(request).keys.show(key_id, authorize=_scope(request, Action.KEYS_READ))
        return KeyView.of(row)

    @patch(
        "/{key_id:str}",
        summary="Change an API key's name, models, expiry, owner, team, user or metadata",
        responses=_WRITE_KEY,
        operation_class=constrained_body(_not_both_expiries),
        opt={"action": Action.KEYS_WRITE},
    )
    async def update_key(
        self, request: Request[Any, Any, Any], key_id: FromPath[str], data: JSONBody[UpdateKey]
    ) -> KeyView:
        changes = {
            field: getattr(data, field)
            for field in ("name", "models", "owner", "team", "user", "metadata")
            if getattr(data, field) is not msgspec.UNSET
        }
        if data.expires_in is not msgspec.UNSET:
            if data.expires_at is not msgspec.UNSET:
                expiry_of(data.expires_at, data.expires_in)  # refuses both
            changes["expires_at"] = expires_after(data.expires_in, "expires_in")
        elif data.expires_at is not msgspec.UNSET:
            changes["expires_at"] = data.expires_at
        runtime = runtime_of(request)
        row = await runtime.keys.update(
            key_id, actor=actor_of(request), authorize=_scope(request, Action.KEYS_WRITE), **changes
        )
        runtime.auth.forget(row.id)  # this process takes the change up at once
        return KeyView.of(row)

    @post(
        "/{key_id:str}/rotate",
        summary="Rotate an API key: a new secret, returned once; the old one works for the grace period",
        status_code=200,
        responses=_WRITE_KEY,
        operation_class=OptionalBody,
        opt={"action": Action.KEYS_WRITE},
    )
    async def rotate_key(
        self, request: Request[Any, Any, Any], key_id: FromPath[str], data: JSONBody[RotateKey | None] = None
    ) -> CreatedKey:
        grace = timedelta(seconds=(data or RotateKey()).grace_seconds)
        runtime = runtime_of(request)
        made = await runtime.keys.rotate(
            key_id, grace=grace, actor=actor_of(request), authorize=_scope(request, Action.KEYS_WRITE)
        )
        runtime.auth.forget(made.key.id)
        return CreatedKey(key=made.secret, info=KeyView.of(made.key))

    @put(
        "/{key_id:str}/limits",
        summary="Set a limit on an API key (replacing its limit for the same model)",
        status_code=200,
        responses=_WRITE_KEY,
        operation_class=constrained_body(_sets_a_limit),
        opt={"action": Action.LIMITS_WRITE},
    )
    async def set_key_limit(
        self, request: Request[Any, Any, Any], key_id: FromPath[str], data: JSONBody[KeyLimitSpec]
    ) -> LimitView:
        """As ``PUT /admin/quotas/limits`` with scope ``key``, named by the key's id (which a rotation keeps)."""
        runtime = runtime_of(request)
        row = await runtime.keys.show(key_id, authorize=_scope(request, Action.LIMITS_WRITE))
        stored = await runtime.limits.put(
            {"scope": "key", "name": str(row.id), **msgspec.to_builtins(data)},
            actor=actor_of(request),
            authorize=may_write_limit(principal_of(request)),
        )
        return LimitView.of(stored.rule, str(stored.id))

    @post(
        "/{key_id:str}/revoke",
        summary="Revoke an API key (by id or prefix)",
        status_code=200,
        responses=_BY_KEY,
        opt={"action": Action.KEYS_WRITE},
    )
    async def revoke_key(self, request: Request[Any, Any, Any], key_id: FromPath[str]) -> KeyView:
        return await _revoke(request, key_id)

    @delete(
        "/{key_id:str}",
        summary="Revoke an API key (as POST .../revoke)",
        status_code=200,
        responses=_BY_KEY,
        opt={"action": Action.KEYS_WRITE},
    )
    async def delete_key(self, request: Request[Any, Any, Any], key_id: FromPath[str]) -> KeyView:
        return await _revoke(request, key_id)


def _own_team(principal: Principal) -> Any:
    """A team admin's key is their team's unless they name it (and they may name only their own)."""
    return principal.team_id if principal.role is Role.TEAM_ADMIN else None


async def _revoke(request: Request[Any, Any, Any], key: str) -> KeyView:
    runtime = runtime_of(request)
    row = await runtime.keys.revoke(key, actor=actor_of(request), authorize=_scope(request, Action.KEYS_WRITE))
    runtime.auth.forget(row.id)  # this process stops accepting it at once
    return KeyView.of(row)
