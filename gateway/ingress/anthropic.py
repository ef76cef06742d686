"""The Anthropic Messages API as an ingress: ``POST /v1/messages`` from Anthropic-SDK clients,
translated to the OpenAI chat schema the pipeline speaks and back (``anthropic_messages``), or
passed through untouched to a model on an Anthropic backend (``anthropic_native``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from gateway.catalog.registry import ModelRoute
from gateway.errors import InvalidRequest, UpstreamError
from gateway.ingress.anthropic_messages import AnthropicEventStream, to_anthropic_message, to_openai_request
from gateway.ingress.anthropic_native import AnthropicPassthrough
from gateway.providers.base import StreamTap
from gateway.proxy.ingress import ChainedTap
from gateway.wire.endpoints import Endpoint

_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


class AnthropicIngress:
    native_kind: str | None = "anthropic"

    def parse_object(self, raw: bytes) -> dict[str, Any]:
        try:
            body = _decoder.decode(raw)
        except (msgspec.DecodeError, RecursionError):
            raise InvalidRequest("The request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise InvalidRequest("The request body must be a JSON object.")
        return body

    def decode(self, raw: bytes, endpoint: Endpoint) -> dict[str, Any]:
        body = self.parse_object(raw)
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise InvalidRequest(
                "model: Field required" if model is None else "model: Input should be a string", param="model"
            )
        return body

    def native_adapter(self, headers: Mapping[str, str]) -> AnthropicPassthrough:
        return AnthropicPassthrough(headers)

    def translate(self, body: dict[str, Any]) -> dict[str, Any]:
        payload = to_openai_request(body)
        payload["stream_options"] = {"include_usage": True} if payload.get("stream") else None
        return {k: v for k, v in payload.items() if v is not None}

    def respond(self, body: bytes, payload: dict[str, Any], route: ModelRoute) -> bytes:
        try:
            response = _decoder.decode(body)
        except (msgspec.DecodeError, RecursionError):
            raise UpstreamError("The backend's answer could not be read.") from None
        model = route.model
        if route.reveal_upstream_model and isinstance(response, dict):
            model = str(response.get("model") or route.upstream_model)
        return _encoder.encode(to_anthropic_message(response, model))

    def stream(self, tap: StreamTap, payload: dict[str, Any], route: ModelRoute, endpoint: Endpoint) -> StreamTap:
        # None: the backend's id, as its first chunk names it.
        return ChainedTap(tap, AnthropicEventStream(None if route.reveal_upstream_model else route.model))


ANTHROPIC = AnthropicIngress()
