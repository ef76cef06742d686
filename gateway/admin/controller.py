"""``/admin/keys``: create, list and revoke API keys."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, post
from litestar.openapi.spec import Schema
from litestar.params import FromPath, FromQuery, JSONBody

from gateway.access.roles import Action
from gateway.admin.auth import actor_of, require_admin
from gateway.admin.schemas import CreatedKey, CreateKey, KeyList, KeyView
from gateway.keys.expiry import expiry_of
from gateway.runtime import Runtime
from gateway.web.openapi import ADMIN, answer_options, constrained_body, error_responses, present

# What each route can answer besides success (403: the admin API is disabled).
_READ = error_responses(400, 401, 403, 503)
_BY_KEY = error_responses(400, 401, 403, 404, 503)
_CREATE = error_responses(400, 401, 403, 404, 409, 503)


def _not_both_expiries() -> Schema:
    return Schema(schema_not=Schema(all_of=[present("expires_at"), present("expires_in")]))


def _runtime(request: Request[Any, Any, Any]) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


class AdminKeysController(Controller):
    path = "/admin/keys"
    guards = [require_admin]
    tags = ["Admin"]
    security = ADMIN
    before_request = answer_options  # type: ignore[assignment]  # Litestar calls it unbound

    @get("/", summary="List API keys", responses=_READ, opt={"action": Action.KEYS_READ})
    async def list_keys(self, request: Request[Any, Any, Any], include_revoked: FromQuery[bool] = True) -> KeyList:
        rows = await _runtime(request).keys.list(include_revoked=include_revoked)
        return KeyList(data=[KeyView.of(r) for r in rows])

    @post(
        "/",
        summary="Create an API key; the secret is returned once",
        responses=_CREATE,
        operation_class=constrained_body(_not_both_expiries),
        opt={"action": Action.KEYS_WRITE},
    )
    async def create_key(self, request: Request[Any, Any, Any], data: JSONBody[CreateKey]) -> CreatedKey:
        created = await _runtime(request).keys.create(
            data.name,
            models=data.models,
            expires_at=expiry_of(data.expires_at, data.expires_in),
            owner=data.owner,
            team=data.team,
            metadata=data.metadata,
            actor=actor_of(request),
        )
        return CreatedKey(key=created.secret, info=KeyView.of(created.key))

    # The parameter is `key_id` (an id or a prefix), not `key`: `key` in a created key is its secret.
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


async def _revoke(request: Request[Any, Any, Any], key: str) -> KeyView:
    runtime = _runtime(request)
    row = await runtime.keys.revoke(key, actor=actor_of(request))
    runtime.auth.forget(row.id)  # this process stops accepting it at once
    return KeyView.of(row)
