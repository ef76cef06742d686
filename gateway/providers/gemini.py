"""OpenAI chat completions and embeddings in, Google's Gemini API (``generativelanguage``) out.

Chat requests are rebuilt field by field (``gemini_request``), replies and streams translated back
(``gemini_response``, ``gemini_stream``); embeddings go through ``batchEmbedContents``, whatever the
number of inputs. This module ties them to the ``Adapter`` protocol and maps Gemini's errors
(``{"error": {"code", "message", "status"}}``) onto the gateway's.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import msgspec

from gateway.catalog.registry import ModelRoute
from gateway.errors import GatewayError, InvalidRequest, UnsupportedEndpoint, UpstreamError, UpstreamRejected
from gateway.providers.base import UpstreamRequest
from gateway.providers.gemini_request import translate_request
from gateway.providers.gemini_response import translate_embeddings, translate_response
from gateway.providers.gemini_stream import GeminiStreamTap
from gateway.wire.endpoints import CHAT, EMBEDDINGS, Endpoint
from gateway.wire.multipart import FormStream
from gateway.wire.usage import Usage

__all__ = ["GeminiAdapter"]

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()
_RETRY_DELAY = re.compile(r"^(\d+(?:\.\d+)?)s$")
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"


class GeminiAdapter:
    def request(self, endpoint: Endpoint, payload: dict[str, Any], route: ModelRoute) -> UpstreamRequest:
        model = _model_path(route.upstream_model)
        if endpoint.path == CHAT.path:
            body = translate_request(payload, route.params)
            method = ":streamGenerateContent?alt=sse" if payload.get("stream") else ":generateContent"
        elif endpoint.path == EMBEDDINGS.path:
            body = _embeddings_request(payload, route)
            method = ":batchEmbedContents"
        else:
            raise UnsupportedEndpoint(
                "This model's backend (Gemini API) supports only /chat/completions and /embeddings, "
                f"not {endpoint.path}."
            )
        url, encoded = f"{route.backend.base_url}/models/{model}{method}", _encoder.encode(body)
        headers = route.backend.credentials.authorize(url, {"content-type": "application/json"}, encoded)
        return UpstreamRequest(url=url, headers=headers, body=encoded)

    def response(self, endpoint: Endpoint, body: bytes) -> tuple[bytes, Usage | None]:
        return translate_embeddings(body) if endpoint.path == EMBEDDINGS.path else translate_response(body)

    def stream(self, endpoint: Endpoint, payload: dict[str, Any], media_type: str = "") -> GeminiStreamTap:
        _require_chat(endpoint)
        options = payload.get("stream_options")
        return GeminiStreamTap(include_usage=isinstance(options, dict) and bool(options.get("include_usage")))

    def upload(self, endpoint: Endpoint, form: FormStream, route: ModelRoute) -> UpstreamRequest:
        raise UnsupportedEndpoint(f"This model's backend (Gemini API) does not offer {endpoint.path}.")

    def error(
        self, route: ModelRoute, status: int, body: bytes, retry_after: str | None, url: str = ""
    ) -> GatewayError:
        fields = _error_fields(body)
        name = route.backend.name
        if status in (401, 403) or "API_KEY_INVALID" in fields.reasons:
            # The backend refused *our* credential (Gemini says so with a 400 for a bad key): the
            # gateway's configuration, not the client's. Its message is not passed on.
            return UpstreamError(
                f"Backend '{name}' rejected the gateway's credentials ({status}); check the backend's api_key_env.",
                code="backend_auth_failed",
            )
        retry_after = retry_after or fields.retry_delay
        if status == 503:
            # Retryable for the client; "1" when Gemini gave no hint, so clients back off a little.
            return UpstreamRejected(
                503, fields.message, type_="api_error", code="overloaded", retry_after=retry_after or "1"
            )
        if status == 429:
            return UpstreamRejected(
                429, fields.message, type_="rate_limit_error", code="rate_limit_exceeded", retry_after=retry_after
            )
        if status >= 500 or status < 400:
            return UpstreamError(f"Backend '{name}' failed with status {status}: {fields.message}")
        code = "not_found" if status == 404 else None
        return UpstreamRejected(
            status, fields.message, type_="invalid_request_error", code=code, retry_after=retry_after
        )


def _require_chat(endpoint: Endpoint) -> None:
    if endpoint.path != CHAT.path:
        raise UnsupportedEndpoint(
            f"This model's backend (Gemini API) streams only /chat/completions, not {endpoint.path}."
        )


def _model_path(upstream_model: str) -> str:
    """The model's id as a path segment; Gemini's own ``models/`` prefix is accepted and dropped."""
    return quote(upstream_model.removeprefix("models/"), safe="-._~")


def _embeddings_request(payload: dict[str, Any], route: ModelRoute) -> dict[str, Any]:
    merged = {**route.params, **payload}
    raw = merged.get("input")
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list) or not texts or not all(isinstance(text, str) and text for text in texts):
        raise InvalidRequest(
            "This model's backend takes 'input' as a non-empty string or an array of non-empty strings, not tokens.",
            param="input",
        )
    model = "models/" + route.upstream_model.removeprefix("models/")
    dimensions = merged.get("dimensions")
    requests = []
    for text in texts:
        request: dict[str, Any] = {"model": model, "content": {"parts": [{"text": text}]}}
        if isinstance(dimensions, int) and not isinstance(dimensions, bool):
            request["outputDimensionality"] = dimensions
        requests.append(request)
    return {"requests": requests}


@dataclass(frozen=True, slots=True)
class _ErrorFields:
    message: str
    reasons: tuple[str, ...] = ()
    retry_delay: str | None = None


def _error_fields(body: bytes) -> _ErrorFields:
    """Gemini's ``error.message``, the ``ErrorInfo`` reasons and the ``RetryInfo`` delay in whole seconds."""
    try:
        decoded = _decoder.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return _ErrorFields(body[:500].decode("utf-8", "replace").strip() or "no error message")
    if isinstance(decoded, list) and decoded and isinstance(decoded[0], dict):
        decoded = decoded[0]  # streamGenerateContent without alt=sse wraps its error in an array
    error = decoded.get("error") if isinstance(decoded, dict) else None
    if not isinstance(error, dict):
        return _ErrorFields(body[:500].decode("utf-8", "replace"))
    message = str(error["message"]) if error.get("message") else "no error message"
    raw_details = error.get("details")
    details = [d for d in raw_details if isinstance(d, dict)] if isinstance(raw_details, list) else []
    reasons = tuple(str(d["reason"]) for d in details if isinstance(d.get("reason"), str))
    delay = None
    for detail in details:
        found = _RETRY_DELAY.match(str(detail.get("retryDelay") or "")) if detail.get("@type") == _RETRY_INFO else None
        if found:
            delay = str(max(1, math.ceil(float(found.group(1)))))
    return _ErrorFields(message, reasons, delay)
