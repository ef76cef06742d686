"""``/admin/backends``: backends with their settings and credential (a secret is shown masked only).
A backend is named by its name, or by its id when the name holds a ``/``. Backends of the models
file are read only here (409 on a change: edit the file); see gateway/catalog/backends.py."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK

from gateway.access.roles import Action
from gateway.admin.auth import AdminController, actor_of, runtime_of
from gateway.admin.backend_schemas import (
    BackendDeleted,
    BackendList,
    BackendView,
    CreateBackend,
    UpdateBackend,
    consistent,
)
from gateway.web.openapi import constrained_body, error_responses

_READ = {"action": Action.BACKENDS_READ}
_WRITE = {"action": Action.BACKENDS_WRITE}


class AdminBackendsController(AdminController):
    path = "/admin/backends"

    @get("/", summary="Every backend (secrets masked)", responses=error_responses(401, 403, 503), opt=_READ)
    async def list_backends(self, request: Request[Any, Any, Any]) -> BackendList:
        return BackendList(data=[BackendView.of(info) for info in await runtime_of(request).control.backends.list()])

    @post(
        "/",
        summary="Create a backend, with a secret stored encrypted or an env: reference",
        responses=error_responses(400, 401, 403, 409, 503),
        operation_class=constrained_body(consistent),
        opt=_WRITE,
    )
    async def create_backend(self, request: Request[Any, Any, Any], data: JSONBody[CreateBackend]) -> BackendView:
        fields = msgspec.to_builtins(data)
        name = fields.pop("name")
        return BackendView.of(await runtime_of(request).control.backends.create(actor_of(request), name, fields))

    @get(
        "/{backend:str}",
        summary="A backend (its secret masked)",
        responses=error_responses(401, 403, 404, 503),
        opt=_READ,
    )
    async def show_backend(self, request: Request[Any, Any, Any], backend: FromPath[str]) -> BackendView:
        return BackendView.of(await runtime_of(request).control.backends.get(backend))

    @patch(
        "/{backend:str}",
        summary="Change a backend's URL, settings or credential (live at once, no restart)",
        responses=error_responses(400, 401, 403, 404, 409, 503),
        operation_class=constrained_body(consistent),
        opt=_WRITE,
    )
    async def update_backend(
        self, request: Request[Any, Any, Any], backend: FromPath[str], data: JSONBody[UpdateBackend]
    ) -> BackendView:
        backends = runtime_of(request).control.backends
        return BackendView.of(await backends.update(actor_of(request), backend, data.changes()))

    @delete(
        "/{backend:str}",
        summary="Delete a backend no model version uses",
        status_code=HTTP_200_OK,
        responses=error_responses(401, 403, 404, 409, 503),
        opt=_WRITE,
    )
    async def delete_backend(self, request: Request[Any, Any, Any], backend: FromPath[str]) -> BackendDeleted:
        deleted, name = await runtime_of(request).control.backends.delete(actor_of(request), backend)
        return BackendDeleted(id=deleted, name=name)


CONTROLLERS: list[type[Controller]] = [AdminBackendsController]
