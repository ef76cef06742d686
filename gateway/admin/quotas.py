"""``/admin/quotas``: the limits in force, setting them, and where a key stands against them."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, delete, get, put
from litestar.openapi.spec import Schema
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK

from gateway.access.roles import Action
from gateway.admin.auth import require_admin
from gateway.admin.quota_schemas import SETS_A_LIMIT, LimitDeleted, LimitList, LimitSpec, LimitView, UsageView
from gateway.runtime import Runtime
from gateway.web.openapi import ADMIN, answer_options, constrained_body, error_responses, present


def _sets_a_limit() -> Schema:
    return Schema(any_of=[present(name) for name in SETS_A_LIMIT])


class AdminQuotasController(Controller):
    path = "/admin/quotas"
    guards = [require_admin]
    tags = ["Admin"]
    security = ADMIN
    before_request = answer_options  # type: ignore[assignment]  # Litestar calls it unbound

    @get(
        "/usage",
        summary="A key's usage against every limit that applies to it (and its end user's)",
        responses=error_responses(400, 401, 403, 404, 503),
        opt={"action": Action.USAGE_READ},
    )
    async def usage(
        self, request: Request[Any, Any, Any], key: FromQuery[str], user: FromQuery[str | None] = None
    ) -> UsageView:
        runtime: Runtime = request.app.state.runtime
        info = await runtime.keys.info(key)
        return UsageView.of(info, user, await runtime.quotas.usage(runtime.live.current.limits, info, user))


class AdminQuotaLimitsController(Controller):
    """Limits set through the API live in SQL beside those of policies/quotas.yaml."""

    path = "/admin/quotas/limits"
    guards = [require_admin]
    tags = ["Admin"]
    security = ADMIN
    before_request = answer_options  # type: ignore[assignment]  # Litestar calls it unbound

    @get(
        "/",
        summary="Every limit in force: from the quotas file, and set through the API or CLI",
        responses=error_responses(401, 403, 503),
        opt={"action": Action.LIMITS_READ},
    )
    async def list_limits(self, request: Request[Any, Any, Any]) -> LimitList:
        runtime: Runtime = request.app.state.runtime
        stored = await runtime.limits.list()
        return LimitList(
            file=[LimitView.of(rule) for rule in runtime.quotas.file_rules],
            api=[LimitView.of(limit.rule, str(limit.id)) for limit in stored],
        )

    @put(
        "/",
        summary="Set a limit (replacing the one on the same scope, name and model)",
        status_code=HTTP_200_OK,
        responses=error_responses(400, 401, 403, 409, 503),
        operation_class=constrained_body(_sets_a_limit),
        opt={"action": Action.LIMITS_WRITE},
    )
    async def set_limit(self, request: Request[Any, Any, Any], data: JSONBody[LimitSpec]) -> LimitView:
        runtime: Runtime = request.app.state.runtime
        # Stored as the quotas file would write it (what was left out stays out), and checked by
        # the file's own rules there.
        stored = await runtime.limits.put(msgspec.to_builtins(data))
        await runtime.reload()  # this replica at once; the others within the refresh interval
        return LimitView.of(stored.rule, str(stored.id))

    @delete(
        "/{limit_id:str}",
        summary="Remove a limit set through the API or CLI",
        status_code=HTTP_200_OK,
        responses=error_responses(400, 401, 403, 404, 503),
        opt={"action": Action.LIMITS_WRITE},
    )
    async def remove_limit(self, request: Request[Any, Any, Any], limit_id: FromPath[str]) -> LimitDeleted:
        runtime: Runtime = request.app.state.runtime
        await runtime.limits.remove(limit_id)
        await runtime.reload()
        return LimitDeleted(deleted=limit_id)
