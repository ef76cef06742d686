"""The Litestar application factory."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator

import httpx
from litestar import Litestar
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from sqlalchemy.exc import SQLAlchemyError

from gateway.admin.controller import AdminKeysController
from gateway.admin.quotas import AdminQuotaLimitsController, AdminQuotasController
from gateway.errors import GatewayError
from gateway.health.controller import HealthController
from gateway.ingress.controller import AnthropicController
from gateway.proxy.controller import OpenAIController
from gateway.runtime import open_runtime
from gateway.settings import Settings
from gateway.web.errors import (
    handle_database_error,
    handle_gateway_error,
    handle_http_exception,
    handle_unexpected,
)
from gateway.web.request_id import add_request_id_header


def create_app(settings: Settings | None = None, *, transport: httpx.AsyncBaseTransport | None = None) -> Litestar:
    """Build the app. ``transport`` replaces the upstream HTTP transport (the test seam)."""
    settings = settings or Settings.load()
    _configure_logging(settings.log_level)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with open_runtime(settings, transport) as runtime:
            app.state.runtime = runtime
            app.state.pipeline = runtime.pipeline
            # Everything built so far lives as long as the process: take it out of the cyclic
            # GC's view, so full collections (tens of ms on this heap) stop stalling requests.
            gc.collect()
            gc.freeze()
            yield

    return Litestar(
        route_handlers=[
            OpenAIController,
            AnthropicController,
            AdminKeysController,
            AdminQuotasController,
            AdminQuotaLimitsController,
            HealthController,
        ],
        lifespan=[lifespan],
        exception_handlers={
            GatewayError: handle_gateway_error,
            HTTPException: handle_http_exception,
            SQLAlchemyError: handle_database_error,
            Exception: handle_unexpected,
        },
        before_send=[add_request_id_header],
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(title="gateway", version="0.1.0"),
        logging_config=None,  # Litestar's default would reset the root logger to INFO
        debug=False,
    )


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level.upper())
    # httpx logs every request at INFO; the request path must not log per request.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))


def create_app_from_env() -> Litestar:
    """Factory for ASGI servers (``uvicorn --factory gateway.app:create_app_from_env``)."""
    return create_app()
