"""``/admin/quotas``: the limits in force, setting them, and where a key stands against them."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from litestar import Controller, Request, delete, get, put
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK

from gateway.admin.auth import require_admin
from gateway.quotas.config import LimitRule
from gateway.runtime import Runtime


class AdminQuotasController(Controller):
    path = "/admin/quotas"
    guards = [require_admin]
    tags = ["Admin"]

    @get("/usage", summary="A key's usage against every limit that applies to it (and its end user's)")
    async def usage(
        self, request: Request[Any, Any, Any], key: FromQuery[str], user: FromQuery[str | None] = None
    ) -> dict[str, Any]:
        runtime: Runtime = request.app.state.runtime
        info = await runtime.keys.info(key)
        rows = await runtime.quotas.usage(runtime.live.current.limits, info, user)
        return {"key": {"id": str(info.id), "prefix": info.prefix}, "user": user, "data": [asdict(r) for r in rows]}


def _rule_view(rule: LimitRule) -> dict[str, Any]:
    view = asdict(rule)
    view["per_minute"] = dict(rule.per_minute)
    return view


class AdminQuotaLimitsController(Controller):
    """Limits set through the API live in SQL beside those of policies/quotas.yaml."""

    path = "/admin/quotas/limits"
    guards = [require_admin]
    tags = ["Admin"]

    @get("/", summary="Every limit in force: from the quotas file, and set through the API or CLI")
    async def list_limits(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        runtime: Runtime = request.app.state.runtime
        stored = await runtime.limits.list()
        return {
            "file": [_rule_view(rule) for rule in runtime.quotas.file_rules],
            "api": [{"id": str(limit.id), **limit.spec} for limit in stored],
        }

    @put("/", summary="Set a limit (replacing the one on the same scope, name and model)", status_code=HTTP_200_OK)
    async def set_limit(self, request: Request[Any, Any, Any], data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
        runtime: Runtime = request.app.state.runtime
        stored = await runtime.limits.put(data)
        await runtime.reload()  # this replica at once; the others within the refresh interval
        return {"id": str(stored.id), **stored.spec}

    @delete("/{limit_id:str}", summary="Remove a limit set through the API or CLI", status_code=HTTP_200_OK)
    async def remove_limit(self, request: Request[Any, Any, Any], limit_id: FromPath[str]) -> dict[str, Any]:
        runtime: Runtime = request.app.state.runtime
        await runtime.limits.remove(limit_id)
        await runtime.reload()
        return {"deleted": limit_id}
