"""The Litestar application factory."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from typing import cast

import httpx
from litestar import Litestar
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.types import (
    LifeSpanReceive,
    LifeSpanScope,
    LifeSpanSend,
    LifeSpanSendMessage,
    LifeSpanStartupFailedEvent,
    Receive,
    Scope,
    Send,
)
from sqlalchemy.exc import SQLAlchemyError

from gateway.admin import audit, backends, directory, models
from gateway.admin.controller import AdminKeysController
from gateway.admin.quotas import AdminQuotaLimitsController, AdminQuotasController
from gateway.db.engine import unusable_database
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
from gateway.web.openapi import ClosedStructs, security_components
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
            *directory.CONTROLLERS,
            *backends.CONTROLLERS,
            *models.CONTROLLERS,
            *audit.CONTROLLERS,
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
        openapi_config=OpenAPIConfig(title="gateway", version="0.1.0", components=security_components()),
        plugins=[ClosedStructs()],
        logging_config=None,  # Litestar's default would reset the root logger to INFO
        debug=False,
    )


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level.upper())
    # httpx logs every request at INFO; the request path must not log per request.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))


def create_app_from_env() -> StartupReporter:
    """Factory for ASGI servers (``uvicorn --factory gateway.app:create_app_from_env``)."""
    settings = Settings.load()
    return StartupReporter(create_app(settings), settings)


class StartupReporter:
    """The app as a server runs it: a start-up failure the gateway can explain reaches the server's
    log as that one line, in place of the traceback Litestar hands over (an operator's mistake is
    not a bug). Requests pass straight through."""

    def __init__(self, app: Litestar, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(
        self, scope: Scope | LifeSpanScope, receive: Receive | LifeSpanReceive, send: Send | LifeSpanSend
    ) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        await self._lifespan(cast("LifeSpanScope", scope), cast("LifeSpanReceive", receive), cast("LifeSpanSend", send))

    async def _lifespan(self, scope: LifeSpanScope, receive: LifeSpanReceive, send: LifeSpanSend) -> None:
        failures: list[LifeSpanSendMessage] = []

        async def hold_startup_failure(message: LifeSpanSendMessage) -> None:
            # Litestar reports the failure first and raises after: hold it until the error is known.
            if message["type"] == "lifespan.startup.failed":
                failures.append(message)
            else:
                await send(message)

        try:
            await self.app(scope, receive, hold_startup_failure)
        except BaseException as exc:
            line = self._explained(exc) if failures else None
            if line is None:
                for failure in failures:
                    await send(failure)
                raise
            failed: LifeSpanStartupFailedEvent = {"type": "lifespan.startup.failed", "message": f"gateway: {line}"}
            await send(failed)

    def _explained(self, exc: BaseException) -> str | None:
        while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
            exc = exc.exceptions[0]
        if isinstance(exc, GatewayError):
            return exc.message
        if isinstance(exc, SQLAlchemyError):
            url, setting = self.settings.effective_database_url, self.settings.database_setting
            return unusable_database(exc, url, setting).message
        return None
