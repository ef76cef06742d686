"""Guard for ``/admin``: who is asking (the bootstrap admin key, or a user's admin token), and may
their role do the route's action at all. Each route names its action in ``opt["action"]``; the
route itself checks the scope of the object it touches (``Principal.check``)."""

from __future__ import annotations

import hmac
from typing import Any

from litestar import Controller
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from gateway.access.principal import SUPERUSER, Principal
from gateway.access.roles import Action
from gateway.audit.actor import Actor
from gateway.directory.tokens import principal_for_token
from gateway.errors import AdminAuthenticationFailed, PermissionDenied
from gateway.keys.auth import presented_key
from gateway.runtime import Runtime
from gateway.web.openapi import ADMIN, answer_options


async def require_admin(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    runtime: Runtime = connection.app.state.runtime
    action: Action | None = handler.opt.get("action")  # every admin route names one (tests/test_roles.py)
    if action is None and connection.scope.get("method") != "OPTIONS":  # Litestar's own OPTIONS have none
        raise AssertionError(f"admin route {connection.scope['path']!r} names no action")
    try:
        given = presented_key(connection.headers)
    except Exception:
        raise AdminAuthenticationFailed("The admin API needs 'Authorization: Bearer <admin key or token>'.") from None
    principal = await _principal(runtime, given)
    if action is not None:
        principal.require(action)
    connection.state.principal = principal


async def _principal(runtime: Runtime, given: str) -> Principal:
    expected = runtime.settings.admin_key
    if expected and hmac.compare_digest(given.encode(), expected.encode()):
        return SUPERUSER
    principal = await principal_for_token(runtime.sessions, given)
    if principal is not None:
        return principal
    if not expected:
        raise PermissionDenied(
            "The admin API takes admin tokens; set GATEWAY_ADMIN_KEY for the bootstrap superuser.",
            code="admin_disabled",
        )
    raise AdminAuthenticationFailed("Incorrect admin key or token.")


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The principal the guard found for this request."""
    principal: Principal = connection.state.principal
    return principal


def remote_of(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    client = connection.client
    return client.host if client else None


def actor_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Actor:
    """The audit log's actor for a change this request makes."""
    return principal_of(connection).actor("api", remote_of(connection))


def runtime_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Runtime:
    runtime: Runtime = connection.app.state.runtime
    return runtime


class AdminController(Controller):
    """What every ``/admin`` controller shares: the guard, the OpenAPI tag and security scheme, and
    OPTIONS answered with every method of the path. Subclasses set ``path``."""

    guards = [require_admin]
    tags = ["Admin"]
    security = ADMIN
    before_request = answer_options  # type: ignore[assignment]  # Litestar calls it unbound
