"""``/admin/quotas``: the limits in force, and where a key stands against them."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from litestar import Controller, Request, get
from litestar.params import FromQuery

from gateway.admin.auth import require_admin
from gateway.runtime import Runtime


class AdminQuotasController(Controller):
    path = "/admin/quotas"
    guards = [require_admin]
    tags = ["Admin"]

    @get("/usage", summary="A key's usage against every limit that applies to it (and its end user's)")
    async def usage(
        self, request: Request[Any, Any, Any], key: FromQuery[str], user: str | None = None
    ) -> dict[str, Any]:
        runtime: Runtime = request.app.state.runtime
        info = await runtime.keys.info(key)
        rows = await runtime.quotas.usage(info, user)
        return {"key": {"id": str(info.id), "prefix": info.prefix}, "user": user, "data": [asdict(r) for r in rows]}
