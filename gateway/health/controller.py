"""``/healthz``: the process answers. ``/readyz``: this replica can serve (the database and Redis are
reported). ``/metrics``: the counters an operator alerts on, in Prometheus' text format."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, Request, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.response import Response
from sqlalchemy import text

from gateway.runtime import Runtime

_CHECK_SECONDS = 2.0


class HealthController(Controller):
    tags = ["Health"]

    @get("/healthz", summary="Liveness")
    async def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @get(
        "/readyz",
        summary="Readiness: whether this replica can serve requests now",
        responses={503: ResponseSpec(dict[str, Any], description="Not ready (the same body says why)")},
    )
    async def readyz(self, request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
        """Unready only for what stops this replica serving. The database being down is not that: the
        snapshot and the key cache keep serving (only changes wait), so it is reported, not failed
        on. Redis down is that only when quotas fail closed and some limit is in force."""
        runtime: Runtime = request.app.state.runtime
        checks = {"database": await _check_database(runtime)}
        ready = True
        if runtime.quotas.redis_state() is not None:
            checks["redis"] = "ok" if await runtime.quotas.ping_redis(_CHECK_SECONDS) else "failed: unreachable"
            if checks["redis"] != "ok" and runtime.quotas.fails_closed and not runtime.live.current.limits.empty:
                ready = False
        degraded = any(value != "ok" for value in checks.values())
        snapshot = runtime.live.current
        body = {
            "status": "unavailable" if not ready else "degraded" if degraded else "ok",
            "checks": checks,
            "snapshot": {"generation": snapshot.generation, "built_at": snapshot.built_at.isoformat()},
        }
        return Response(body, status_code=200 if ready else 503)

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
            "# HELP gateway_quota_redis_unreachable 1 while the quota step cannot reach Redis (fail-open counts "
            "per replica, fail-closed refuses).",
            "# TYPE gateway_quota_redis_unreachable gauge",
            f"gateway_quota_redis_unreachable {int(quotas.redis_state() not in (None, 'ok'))}",
            "# HELP gateway_snapshot_generation The runtime snapshot in force on this replica.",
            "# TYPE gateway_snapshot_generation gauge",
            f"gateway_snapshot_generation {runtime.live.current.generation}",
            "# HELP gateway_snapshot_refresh_failures_total Snapshot rebuilds that could not read the database "
            "(the snapshot in force kept serving).",
            "# TYPE gateway_snapshot_refresh_failures_total counter",
            f"gateway_snapshot_refresh_failures_total {runtime.snapshots.failures}",
        ]
        return "\n".join(lines) + "\n"


async def _check_database(runtime: Runtime) -> str:
    try:
        async with asyncio.timeout(_CHECK_SECONDS):
            async with runtime.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except Exception as exc:
        return f"failed: {type(exc).__name__}"
    return "ok"
