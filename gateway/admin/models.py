"""``/admin/models``: models, their versions, and the lifecycle moves (promote to canary or active,
roll back, retire), diffs and history. A model is named by its name, or by its id when the name
holds a character a URL path cannot carry (``/``)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK

from gateway.access.roles import Action
from gateway.admin.auth import AdminController, actor_of, runtime_of
from gateway.admin.model_schemas import (
    Change,
    CreateModel,
    HistoryEntry,
    ModelHistory,
    ModelList,
    ModelView,
    Promote,
    PromoteToCanary,
    VersionDiff,
    VersionSpec,
    VersionView,
)
from gateway.web.openapi import error_responses

_READ = {"action": Action.MODELS_READ}
_WRITE = {"action": Action.MODELS_WRITE}
_READ_ERRORS = error_responses(400, 401, 403, 404, 503)
_WRITE_ERRORS = error_responses(400, 401, 403, 404, 409, 503)


class AdminModelsController(AdminController):
    path = "/admin/models"

    @get("/", summary="Models with their versions and states", responses=_READ_ERRORS, opt=_READ)
    async def list_models(self, request: Request[Any, Any, Any]) -> ModelList:
        return ModelList(data=[ModelView.of(m) for m in await runtime_of(request).control.versions.models()])

    @post("/", summary="Create a model (served once a version of it is active)", responses=_WRITE_ERRORS, opt=_WRITE)
    async def create_model(self, request: Request[Any, Any, Any], data: JSONBody[CreateModel]) -> ModelView:
        versions = runtime_of(request).control.versions
        return ModelView.of(await versions.create_model(actor_of(request), data.name, rollout=data.rollout))

    @get("/{model:str}", summary="A model and its versions", responses=_READ_ERRORS, opt=_READ)
    async def show_model(self, request: Request[Any, Any, Any], model: FromPath[str]) -> ModelView:
        return ModelView.of(await runtime_of(request).control.versions.model(model))

    @get(
        "/{model:str}/history", summary="A model's versions and every change to them", responses=_READ_ERRORS, opt=_READ
    )
    async def history(self, request: Request[Any, Any, Any], model: FromPath[str]) -> ModelHistory:
        found, entries = await runtime_of(request).control.versions.history(model)
        return ModelHistory(model=ModelView.of(found), events=[HistoryEntry.of(e) for e in entries])

    @get("/{model:str}/diff", summary="What differs between two versions", responses=_READ_ERRORS, opt=_READ)
    async def diff(
        self, request: Request[Any, Any, Any], model: FromPath[str], first: FromQuery[int], second: FromQuery[int]
    ) -> VersionDiff:
        changes = await runtime_of(request).control.versions.diff(model, first, second)
        return VersionDiff(
            model=model,
            first=first,
            second=second,
            changes={name: Change(change["from"], change["to"]) for name, change in changes.items()},
        )

    @post("/{model:str}/versions", summary="Create a version (a draft)", responses=_WRITE_ERRORS, opt=_WRITE)
    async def create_version(
        self, request: Request[Any, Any, Any], model: FromPath[str], data: JSONBody[VersionSpec]
    ) -> VersionView:
        versions = runtime_of(request).control.versions
        return VersionView.of(await versions.create_version(actor_of(request), model, msgspec.to_builtins(data)))

    @get("/{model:str}/versions/{number:int}", summary="One version", responses=_READ_ERRORS, opt=_READ)
    async def show_version(
        self, request: Request[Any, Any, Any], model: FromPath[str], number: FromPath[int]
    ) -> VersionView:
        return VersionView.of(await runtime_of(request).control.versions.version(model, number))

    @post(
        "/{model:str}/versions/{number:int}/promote",
        summary="Promote a version to canary (with a share of traffic) or to active",
        status_code=HTTP_200_OK,
        responses=_WRITE_ERRORS,
        opt=_WRITE,
    )
    async def promote(
        self, request: Request[Any, Any, Any], model: FromPath[str], number: FromPath[int], data: JSONBody[Promote]
    ) -> ModelView:
        versions = runtime_of(request).control.versions
        if isinstance(data, PromoteToCanary):
            promoted = await versions.promote(actor_of(request), model, number, to="canary", share=data.share)
        else:
            promoted = await versions.promote(actor_of(request), model, number, to="active")
        return ModelView.of(promoted)

    @post(
        "/{model:str}/versions/{number:int}/retire",
        summary="Retire a draft or canary version",
        status_code=HTTP_200_OK,
        responses=_WRITE_ERRORS,
        opt=_WRITE,
    )
    async def retire(self, request: Request[Any, Any, Any], model: FromPath[str], number: FromPath[int]) -> ModelView:
        return ModelView.of(await runtime_of(request).control.versions.retire(actor_of(request), model, number))

    @post(
        "/{model:str}/rollback",
        summary="Make the previously active version active again",
        status_code=HTTP_200_OK,
        responses=_WRITE_ERRORS,
        opt=_WRITE,
    )
    async def rollback(self, request: Request[Any, Any, Any], model: FromPath[str]) -> ModelView:
        return ModelView.of(await runtime_of(request).control.versions.rollback(actor_of(request), model))


CONTROLLERS: list[type[Controller]] = [AdminModelsController]
