"""``/admin/keys``: create, list and revoke API keys."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, post
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK

from gateway.admin.auth import require_admin
from gateway.admin.schemas import CreatedKey, CreateKey, KeyList, KeyView
from gateway.keys.expiry import expiry_of
from gateway.runtime import Runtime


def _runtime(request: Request[Any, Any, Any]) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


class AdminKeysController(Controller):
    path = "/admin/keys"
    guards = [require_admin]
    tags = ["Admin"]

    @get("/", summary="List API keys")
    async def list_keys(self, request: Request[Any, Any, Any], include_revoked: FromQuery[bool] = True) -> KeyList:
        rows = await _runtime(request).keys.list(include_revoked=include_revoked)
        return KeyList(data=[KeyView.of(r) for r in rows])

    @post("/", summary="Create an API key; the secret is returned once")
    async def create_key(self, request: Request[Any, Any, Any], data: JSONBody[CreateKey]) -> CreatedKey:
        created = await _runtime(request).keys.create(
            data.name,
            models=data.models,
            expires_at=expiry_of(data.expires_at, data.expires_in),
            owner=data.owner,
            team=data.team,
            metadata=data.metadata,
        )
        return CreatedKey(key=created.secret, info=KeyView.of(created.key))

    @post("/{key:str}/revoke", summary="Revoke an API key (by id or prefix)", status_code=HTTP_200_OK)
    async def revoke_key(self, request: Request[Any, Any, Any], key: FromPath[str]) -> KeyView:
        return await _revoke(request, key)

    @delete("/{key:str}", summary="Revoke an API key (same as POST .../revoke)", status_code=HTTP_200_OK)
    async def delete_key(self, request: Request[Any, Any, Any], key: FromPath[str]) -> KeyView:
        return await _revoke(request, key)


async def _revoke(request: Request[Any, Any, Any], key: str) -> KeyView:
    runtime = _runtime(request)
    row = await runtime.keys.revoke(key)
    runtime.auth.forget(row.id)  # this process stops accepting it at once
    return KeyView.of(row)
