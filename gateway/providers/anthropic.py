"""OpenAI chat completions in, Anthropic Messages out.

Requests are rebuilt field by field (``anthropic_request``), replies and streams translated back
(``anthropic_response``, ``anthropic_stream``); this module ties them to the ``Adapter`` protocol
and maps Anthropic's errors onto the gateway's.
"""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.catalog.registry import ModelRoute
from gateway.errors import GatewayError, UnsupportedEndpoint, UpstreamError, UpstreamRejected
from gateway.providers.anthropic_request import DEFAULT_MAX_TOKENS, translate_request
from gateway.providers.anthropic_response import openai_error_type, translate_response
from gateway.providers.anthropic_stream import AnthropicStreamTap
from gateway.providers.base import UpstreamRequest
from gateway.wire.endpoints import CHAT, Endpoint
from gateway.wire.multipart import FormStream
from gateway.wire.usage import Usage

__all__ = ["ANTHROPIC_VERSION", "DEFAULT_MAX_TOKENS", "AnthropicAdapter"]

ANTHROPIC_VERSION = "2023-06-01"
OVERLOADED = 529  # Anthropic's own status for "busy for everyone"; clients know 503 for that
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


class AnthropicAdapter:
    def request(self, endpoint: Endpoint, payload: dict[str, Any], route: ModelRoute) -> UpstreamRequest:
        _require_chat(endpoint)
        body = translate_request(payload, route.params, route.upstream_model)
        url, encoded = route.backend.base_url + "/messages", _encoder.encode(body)
        headers = {"content-type": "application/json", "anthropic-version": ANTHROPIC_VERSION}
        return UpstreamRequest(
            url=url, headers=route.backend.credentials.authorize(url, headers, encoded), body=encoded
        )

    def response(self, endpoint: Endpoint, body: bytes) -> tuple[bytes, Usage | None]:
        _require_chat(endpoint)
        return translate_response(body)

    def stream(self, endpoint: Endpoint, payload: dict[str, Any], media_type: str = "") -> AnthropicStreamTap:
        _require_chat(endpoint)
        options = payload.get("stream_options")
        return AnthropicStreamTap(include_usage=isinstance(options, dict) and bool(options.get("include_usage")))

    def upload(self, endpoint: Endpoint, form: FormStream, route: ModelRoute) -> UpstreamRequest:
        raise UnsupportedEndpoint(f"This model's backend (Anthropic Messages API) does not offer {endpoint.path}.")

    def error(
        self, route: ModelRoute, status: int, body: bytes, retry_after: str | None, url: str = ""
    ) -> GatewayError:
        anthropic_type, message = _error_fields(body)
        name = route.backend.name
        if status in (401, 403):
            # The backend refused *our* credential: the gateway's configuration, not the client's key.
            # Its message is not passed on: it may quote (part of) the key it was given.
            return UpstreamError(
                f"Backend '{name}' rejected the gateway's credentials ({status}); check the backend's api_key_env.",
                code="backend_auth_failed",
            )
        if status == OVERLOADED or anthropic_type == "overloaded_error":
            # Retryable for the client; "1" when Anthropic gave no hint, so clients back off a little.
            return UpstreamRejected(503, message, type_="api_error", code="overloaded", retry_after=retry_after or "1")
        if status == 402:
            # Billing trouble on the gateway's Anthropic account: nothing the client can fix.
            return UpstreamError(f"Backend '{name}' refused the request for billing reasons: {message}")
        if status >= 500 or status < 400:
            return UpstreamError(f"Backend '{name}' failed with status {status}: {message}")
        type_, code = openai_error_type(anthropic_type, "invalid_request_error")
        return UpstreamRejected(status, message, type_=type_, code=code, retry_after=retry_after)


def _require_chat(endpoint: Endpoint) -> None:
    if endpoint.path != CHAT.path:  # e.g. the Anthropic ingress, recorded as "messages"
        raise UnsupportedEndpoint(
            f"This model's backend (Anthropic Messages API) supports only /chat/completions, not {endpoint.path}."
        )


def _error_fields(body: bytes) -> tuple[str | None, str]:
    """Anthropic's ``error.type`` and ``error.message``; the raw text when the body is not its JSON."""
    try:
        decoded = _decoder.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return None, body[:500].decode("utf-8", "replace").strip() or "no error message"
    error = decoded.get("error") if isinstance(decoded, dict) else None
    if not isinstance(error, dict):
        return None, body[:500].decode("utf-8", "replace")
    type_, message = error.get("type"), error.get("message")
    return (type_ if isinstance(type_, str) else None), (str(message) if message else "no error message")
