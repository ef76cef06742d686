"""OpenAI chat completions (and single-text embeddings) in, Amazon Bedrock Runtime out.

Chat goes to the Converse API (``/model/{id}/converse``, or ``/converse-stream`` when streaming),
rebuilt field by field (``bedrock_request``), answered back by ``bedrock_response`` and
``bedrock_stream``. Embeddings go to a Titan text-embeddings model through ``/model/{id}/invoke``.
Every request is signed with AWS Signature Version 4 (``bedrock_signing``) using credentials from
botocore's default chain, unless the backend is configured with a Bedrock API key, which is then
sent as a bearer token. This module ties them to the ``Adapter`` protocol and maps Bedrock's
errors (``{"message": ...}``, the exception's name in ``x-amzn-ErrorType`` or ``__type``) onto
the gateway's.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import msgspec

from gateway.catalog.registry import ModelRoute
from gateway.errors import GatewayError, UnsupportedEndpoint, UpstreamError, UpstreamRejected, UpstreamTimeout
from gateway.providers.base import UpstreamRequest
from gateway.providers.bedrock_embeddings import embeddings_request, translate_embeddings
from gateway.providers.bedrock_request import DEFAULT_MAX_TOKENS, translate_request
from gateway.providers.bedrock_response import exception_name, translate_response
from gateway.providers.bedrock_signing import AwsCredentials
from gateway.providers.bedrock_stream import BedrockStreamTap
from gateway.wire.endpoints import CHAT, EMBEDDINGS, Endpoint
from gateway.wire.multipart import FormStream
from gateway.wire.usage import Usage

__all__ = ["DEFAULT_MAX_TOKENS", "EVENT_STREAM", "AwsCredentials", "BedrockAdapter"]

EVENT_STREAM = "application/vnd.amazon.eventstream"
"""The content type of a ConverseStream reply."""

# Characters a path segment may hold as they are (RFC 3986 sub-delims, ":" and "@"): left literal,
# since aiohttp's URL class decodes their escapes before sending (httpx keeps them) and the path
# sent must be the path signed. "/" (in inference-profile ARNs) is still escaped; both keep %2F.
_PATH_SAFE = ":@!$&'()*+,;="
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()
_AUTH_ERRORS = frozenset(
    (
        "accessdeniedexception",
        "unrecognizedclientexception",
        "invalidsignatureexception",
        "expiredtokenexception",
        "incompletesignatureexception",
        "missingauthenticationtokenexception",
    )
)
_OVERLOADED = frozenset(("serviceunavailableexception", "modelnotreadyexception"))
_THROTTLED = frozenset(("throttlingexception", "servicequotaexceededexception"))


class BedrockAdapter:
    def request(self, endpoint: Endpoint, payload: dict[str, Any], route: ModelRoute) -> UpstreamRequest:
        model = quote(route.upstream_model, safe=_PATH_SAFE)
        if endpoint.path == CHAT.path:
            body = translate_request(payload, route.params)
            method = "converse-stream" if payload.get("stream") else "converse"
        elif endpoint.path == EMBEDDINGS.path:
            body = embeddings_request(payload, route.params, route.upstream_model)
            method = "invoke"
        else:
            raise UnsupportedEndpoint(
                "This model's backend (Amazon Bedrock) supports only /chat/completions and /embeddings, "
                f"not {endpoint.path}."
            )
        url = f"{route.backend.base_url}/model/{model}/{method}"
        encoded = _encoder.encode(body)
        # Signed (SigV4) by the backend's credentials, or carrying its Bedrock API key.
        headers = route.backend.credentials.authorize(url, {"content-type": "application/json"}, encoded)
        return UpstreamRequest(url=url, headers=headers, body=encoded)

    def response(self, endpoint: Endpoint, body: bytes) -> tuple[bytes, Usage | None]:
        if endpoint.path == EMBEDDINGS.path:
            return translate_embeddings(body)
        _require_chat(endpoint)
        return translate_response(body)

    def stream(self, endpoint: Endpoint, payload: dict[str, Any], media_type: str = "") -> BedrockStreamTap:
        _require_chat(endpoint)
        options = payload.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        model = payload.get("model")
        return BedrockStreamTap(include_usage=include_usage, model=model if isinstance(model, str) else "")

    def upload(self, endpoint: Endpoint, form: FormStream, route: ModelRoute) -> UpstreamRequest:
        raise UnsupportedEndpoint(f"This model's backend (Amazon Bedrock) does not offer {endpoint.path}.")

    def error(
        self, route: ModelRoute, status: int, body: bytes, retry_after: str | None, url: str = ""
    ) -> GatewayError:
        kind, message = _error_fields(body)
        name = route.backend.name
        if status in (401, 403) or kind in _AUTH_ERRORS:
            # AWS refused *our* identity or its permissions: the gateway's configuration, not the
            # client's. Its message is not passed on: it names the account, role and resources.
            return UpstreamError(
                f"Backend '{name}' rejected the gateway's AWS credentials ({status}); check the credentials "
                "and their permission to invoke this model (bedrock:InvokeModel).",
                code="backend_auth_failed",
            )
        if status == 503 or kind in _OVERLOADED:
            # Retryable for the client; "1" when Bedrock gave no hint, so clients back off a little.
            return UpstreamRejected(503, message, type_="api_error", code="overloaded", retry_after=retry_after or "1")
        if status == 429 or kind in _THROTTLED:
            return UpstreamRejected(
                429, message, type_="rate_limit_error", code="rate_limit_exceeded", retry_after=retry_after
            )
        if status == 408 or kind == "modeltimeoutexception":
            return UpstreamTimeout(f"Backend '{name}' timed out running the model: {message}")
        if status >= 500 or status < 400 or status == 424:  # 424: the model itself failed
            return UpstreamError(f"Backend '{name}' failed with status {status}: {message}")
        code = "not_found" if status == 404 else None
        return UpstreamRejected(status, message, type_="invalid_request_error", code=code, retry_after=retry_after)


def _require_chat(endpoint: Endpoint) -> None:
    if endpoint.path != CHAT.path:
        raise UnsupportedEndpoint(
            f"This model's backend (Amazon Bedrock) streams only /chat/completions, not {endpoint.path}."
        )


def _error_fields(body: bytes) -> tuple[str, str]:
    """The exception's lower-cased name (from ``__type`` or ``code``, else "") and its message.

    The ``x-amzn-ErrorType`` header is not handed to adapters, so the status and body must do.
    """
    try:
        decoded = _decoder.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return "", body[:500].decode("utf-8", "replace").strip() or "no error message"
    if not isinstance(decoded, dict):
        return "", body[:500].decode("utf-8", "replace")
    raw = decoded.get("message", decoded.get("Message"))
    message = str(raw) if raw else "no error message"
    kind = exception_name(decoded.get("__type") or decoded.get("code"))
    return kind, message
