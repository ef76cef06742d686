"""``POST /v1/messages``: the Anthropic Messages API, for clients of the ``anthropic`` SDK.

The request runs through the same pipeline as ``/v1/chat/completions`` (same keys, routing,
ledger); only the wire schema differs, and so do error bodies, which ``gateway.web.errors`` puts
in Anthropic's shape for every path under ``/v1/messages``.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, post
from litestar.datastructures import State
from litestar.response.base import ASGIResponse
from litestar.status_codes import HTTP_200_OK
from litestar.types import ASGIApp

from gateway.errors import UnsupportedEndpoint
from gateway.ingress.anthropic import ANTHROPIC
from gateway.ingress.anthropic_messages import count_tokens_request
from gateway.ingress.openapi import count_response, count_tokens_body, message_response, messages_body
from gateway.providers.anthropic import ANTHROPIC_VERSION
from gateway.providers.base import UpstreamRequest
from gateway.proxy.pipeline import Pipeline
from gateway.web.client import RequestClient
from gateway.web.openapi import PROXY_ERRORS, USER_KEY, error_responses, raw_body_operation
from gateway.web.request_id import request_id
from gateway.wire.endpoints import MESSAGES

_encoder = msgspec.json.Encoder()


class AnthropicController(Controller):
    path = "/v1"
    tags = ["Anthropic-compatible API"]
    security = USER_KEY

    @post(
        "/messages",
        summary="Create a message (Anthropic Messages API, plain or streamed)",
        status_code=HTTP_200_OK,
        operation_class=raw_body_operation(messages_body, message_response),
        responses=error_responses(*PROXY_ERRORS, anthropic=True),
    )
    async def messages(self, request: Request[Any, Any, State]) -> ASGIApp:
        pipeline: Pipeline = request.app.state.pipeline
        return await pipeline.handle(request_id(request.scope), MESSAGES, RequestClient(request), ANTHROPIC)

    @post(
        "/messages/count_tokens",
        summary="Count a message's input tokens (Anthropic backends only)",
        status_code=HTTP_200_OK,
        operation_class=raw_body_operation(count_tokens_body, count_response),
        responses=error_responses(*PROXY_ERRORS, anthropic=True),
    )
    async def count_tokens(self, request: Request[Any, Any, State]) -> ASGIApp:
        pipeline: Pipeline = request.app.state.pipeline
        key = await pipeline.authenticate(request.headers)
        body = ANTHROPIC.parse_object(await RequestClient(request).body())
        route = pipeline.route(count_tokens_request(body)["model"], key)
        if route.backend.kind != "anthropic":
            # Only the model's own tokenizer gives an honest count; we have it only through Anthropic.
            raise UnsupportedEndpoint(
                f"Token counting is available for models on an Anthropic backend; '{route.model}' is served "
                f"by a '{route.backend.kind}' backend."
            )
        url = route.backend.base_url + "/messages/count_tokens"
        encoded = _encoder.encode({**body, "model": route.upstream_model})
        headers = {"content-type": "application/json", "anthropic-version": ANTHROPIC_VERSION}
        upstream = UpstreamRequest(url, route.backend.credentials.authorize(url, headers, encoded), encoded)
        return ASGIResponse(body=await pipeline.relay_json(route, upstream), media_type="application/json")
