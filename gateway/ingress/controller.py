"""``POST /v1/messages``: the Anthropic Messages API, for clients of the ``anthropic`` SDK.

The request runs through the same pipeline as ``/v1/chat/completions`` (same keys, routing,
ledger); only the wire schema differs, and so do error bodies, which take Anthropic's shape.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, post
from litestar.datastructures import State
from litestar.response.base import ASGIResponse
from litestar.types import ASGIApp

from gateway.errors import GatewayError, UpstreamRejected
from gateway.ingress.anthropic import ANTHROPIC
from gateway.ingress.anthropic_messages import anthropic_error_body
from gateway.proxy.body import MESSAGES
from gateway.proxy.pipeline import Pipeline
from gateway.web.client import RequestClient
from gateway.web.errors import status_and_type
from gateway.web.request_id import request_id

_encoder = msgspec.json.Encoder()


class AnthropicController(Controller):
    path = "/v1"
    tags = ["Anthropic-compatible API"]

    @post("/messages", summary="Create a message (Anthropic Messages API, plain or streamed)")
    async def messages(self, request: Request[Any, Any, State]) -> ASGIApp:
        pipeline: Pipeline = request.app.state.pipeline
        try:
            return await pipeline.handle(request_id(request.scope), MESSAGES, RequestClient(request), ANTHROPIC)
        except GatewayError as exc:
            return _anthropic_error(exc)


def _anthropic_error(exc: GatewayError) -> ASGIResponse:
    status, _ = status_and_type(exc)
    retry_after = exc.retry_after if isinstance(exc, UpstreamRejected) else None
    headers = {"retry-after": retry_after} if retry_after else None
    body = _encoder.encode(anthropic_error_body(status, exc.message))
    return ASGIResponse(body=body, status_code=status, media_type="application/json", headers=headers)
