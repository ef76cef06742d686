"""Every response carries ``x-request-id``; the same id names the request's usage record.

The id is always ours (a client-sent id could collide and cost a ledger row); it is made on
first use, by a handler or by the outgoing response, and kept in the ASGI scope.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar.types import Message, Scope

_SCOPE_KEY = "gateway.request_id"


def request_id(scope: Scope) -> str:
    state: dict[str, Any] = scope  # type: ignore[assignment]  # ASGI scopes may carry extension keys
    rid = state.get(_SCOPE_KEY)
    if rid is None:
        rid = state[_SCOPE_KEY] = "req_" + uuid.uuid4().hex
    return str(rid)


async def add_request_id_header(message: Message, scope: Scope) -> None:
    """Litestar ``before_send`` hook: sees every response, errors and unknown routes included."""
    if message["type"] == "http.response.start":
        headers = list(message.get("headers") or [])
        headers.append((b"x-request-id", request_id(scope).encode()))
        message["headers"] = headers
