"""Guard for ``/admin``: the admin key from settings, compared in constant time."""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from gateway.errors import AdminAuthenticationFailed, PermissionDenied
from gateway.keys.auth import presented_key
from gateway.runtime import Runtime


def require_admin(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
    runtime: Runtime = connection.app.state.runtime
    expected = runtime.settings.admin_key
    if not expected:
        raise PermissionDenied("The admin API is disabled: set GATEWAY_ADMIN_KEY to enable it.", code="admin_disabled")
    try:
        given = presented_key(connection.headers)
    except Exception:
        raise AdminAuthenticationFailed("The admin API needs 'Authorization: Bearer <admin key>'.") from None
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise AdminAuthenticationFailed("Incorrect admin key.")
