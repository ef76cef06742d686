"""``/healthz``: the process answers. ``/readyz``: the database and Redis answer too. ``/metrics``:
the counters an operator alerts on, in Prometheus' text format."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, Request, get
from litestar.response import Response
from sqlalchemy import text

from gateway.runtime import Runtime


class HealthController(Controller):
    tags = ["Health"]

    @get("/healthz", summary="Liveness")
    async def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/readyz", summary="Readiness: database and Redis reachable")
    async def readyz(self, request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
        runtime: Runtime = request.app.state.runtime
        checks = {"database": await _check_database(runtime)}
        if runtime.redis is not None:
            checks["redis"] = await _check_redis(runtime)
        ready = all(v == "ok" for v in checks.values())
        return Response(
            {"status": "ok" if ready else "unavailable", "checks": checks}, status_code=200 if ready else 503
        )

    @get("/metrics", summary="Counters in Prometheus' text format", media_type="text/plain; version=0.0.4")
    async def metrics(self, request: Request[Any, Any, Any]) -> str:
        runtime: Runtime = request.app.state.runtime
        quotas = runtime.quotas
        lines = [
            "# HELP gateway_quota_fail_open_admissions_total Requests admitted on this replica's own counters "
            "while Redis was unreachable (when_redis_is_down: open).",
            "# TYPE gateway_quota_fail_open_admissions_total counter",
            f"gateway_quota_fail_open_admissions_total {quotas.fail_open_admissions}",
            "# HELP gateway_quota_settlements_pending Quota settlements waiting to be written to Redis.",
            "# TYPE gateway_quota_settlements_pending gauge",
            f"gateway_quota_settlements_pending {quotas.settlements_pending}",
            "# HELP gateway_usage_records_written_total Usage records this process wrote to SQL.",
            "# TYPE gateway_usage_records_written_total counter",
            f"gateway_usage_records_written_total {runtime.ledger.written}",
        ]
        return "\n".join(lines) + "\n"


async def _check_database(runtime: Runtime) -> str:
    try:
        async with asyncio.timeout(2):
            async with runtime.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except Exception as exc:
        return f"failed: {type(exc).__name__}"
    return "ok"


async def _check_redis(runtime: Runtime) -> str:
    assert runtime.redis is not None
    try:
        async with asyncio.timeout(2):
            await runtime.redis.ping()
    except Exception as exc:
        return f"failed: {type(exc).__name__}"
    return "ok"
