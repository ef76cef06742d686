"""Anthropic in, Anthropic out: a ``/v1/messages`` request for a model on an Anthropic backend.

Nothing is translated, so everything Anthropic offers reaches the client intact (thinking blocks and
their signatures, ``cache_control``, documents, citations, server tools, betas). The gateway only
swaps in the backend's model id and credential, and reads usage as the reply passes: from the
message, or from the stream's events by way of the Anthropic stream tap, whose OpenAI output is
used for metering (and for counting a stream cut short) but never sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from gateway.catalog.registry import ModelRoute
from gateway.errors import UpstreamError
from gateway.ingress.anthropic_messages_stream import stream_error_type
from gateway.providers.anthropic import ANTHROPIC_VERSION, AnthropicAdapter
from gateway.providers.anthropic_response import usage_of
from gateway.providers.anthropic_stream import AnthropicStreamTap
from gateway.providers.base import UpstreamRequest
from gateway.providers.openai_chunks import parse_sse
from gateway.wire.endpoints import Endpoint
from gateway.wire.usage import Usage

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()
# Client headers that choose what the Messages API does, passed on; everything else is the gateway's.
_CLIENT_HEADERS = ("anthropic-version", "anthropic-beta")
_SHARED_DEFAULTS = ("max_tokens", "temperature", "top_p")


class AnthropicPassthrough(AnthropicAdapter):
    """An ``Adapter`` whose payload is the client's own Anthropic request; made per request, as it
    carries the client's ``anthropic-version`` and ``anthropic-beta`` choices."""

    def __init__(self, client_headers: Mapping[str, str]) -> None:
        self._chosen = {name: client_headers[name] for name in _CLIENT_HEADERS if client_headers.get(name)}

    def request(self, endpoint: Endpoint, payload: dict[str, Any], route: ModelRoute) -> UpstreamRequest:
        # The version's defaults where the client sent none, for the parameters both schemas name alike.
        defaults = {name: route.params[name] for name in _SHARED_DEFAULTS if name in route.params}
        body = {**defaults, **payload, "model": route.upstream_model}
        headers = {"content-type": "application/json", "anthropic-version": ANTHROPIC_VERSION, **self._chosen}
        url, encoded = route.backend.base_url + "/messages", _encoder.encode(body)
        return UpstreamRequest(url, route.backend.credentials.authorize(url, headers, encoded), encoded)

    def response(self, endpoint: Endpoint, body: bytes) -> tuple[bytes, Usage | None]:
        try:
            message = _decoder.decode(body)
        except (msgspec.DecodeError, RecursionError):
            raise UpstreamError("The backend returned a response that is not JSON.") from None
        return body, usage_of(message.get("usage")) if isinstance(message, dict) else None

    def stream(self, endpoint: Endpoint, payload: dict[str, Any], media_type: str = "") -> PassthroughTap:
        return PassthroughTap()


class PassthroughTap(AnthropicStreamTap):
    """Forwards Anthropic's events untouched while the parent class reads usage from them."""

    def __init__(self) -> None:
        super().__init__(include_usage=False)

    def feed(self, data: bytes) -> bytes:
        super().feed(data)
        return data

    def close(self) -> bytes:
        super().close()
        return b""

    def error(self, event: bytes) -> bytes:
        """The gateway's own OpenAI-shaped error event, as the Anthropic ``error`` event."""
        super().error(event)
        chunk = parse_sse(event) or {}
        error = chunk.get("error")
        error = error if isinstance(error, dict) else {}
        body = {"type": "error", "error": {"type": stream_error_type(error), "message": error.get("message") or ""}}
        return b"event: error\ndata: " + _encoder.encode(body) + b"\n\n"
