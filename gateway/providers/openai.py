"""OpenAI wire schema in, OpenAI wire schema out: OpenAI itself, vLLM, Ollama, TGI, llama.cpp.

The body passes through; the adapter only swaps in the upstream model id, fills the version's
default parameters, and asks streams for their usage so every request can be priced.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import msgspec

from gateway.catalog.registry import ModelRoute
from gateway.errors import GatewayError, UpstreamError, UpstreamRejected
from gateway.providers.base import StreamTap, UpstreamRequest
from gateway.providers.openai_media import (
    KEEP_TRANSCRIPT,
    RelayTap,
    TextTranscriptTap,
    image_usage,
    speech_meter,
    transcript_usage,
)
from gateway.providers.responses_sse import ResponsesStreamTap
from gateway.providers.sse import OpenAIStreamTap
from gateway.wire.endpoints import IMAGES, RESPONSES, SPEECH, Endpoint
from gateway.wire.multipart import FormStream, Replacement
from gateway.wire.usage import Usage

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


class OpenAIAdapter:
    def request(self, endpoint: Endpoint, payload: dict[str, Any], route: ModelRoute) -> UpstreamRequest:
        body = {**route.params, **payload, "model": route.upstream_model}
        if body.get("stream") and endpoint.path != RESPONSES.path:  # Responses streams report usage anyway
            options = body.get("stream_options") or {}
            if not options.get("include_usage"):
                body["stream_options"] = {**options, "include_usage": True}
        url, encoded = route.backend.base_url + endpoint.path, _encoder.encode(body)
        headers = route.backend.credentials.authorize(url, {"content-type": "application/json"}, encoded)
        return UpstreamRequest(url=url, headers=headers, body=encoded)

    def upload(self, endpoint: Endpoint, form: FormStream, route: ModelRoute) -> UpstreamRequest:
        # Plain text says nothing about the audio's length; JSON carries the usage to bill by, and is
        # turned back into text on the way out (``TextTranscriptTap``). A rule, not a value, so that it
        # also applies when the field comes after the file.
        replace: dict[str, Replacement] = {"model": route.upstream_model, "response_format": _json_for_text}
        url = route.backend.base_url + endpoint.path
        headers = route.backend.credentials.authorize(url, {"content-type": form.content_type}, None)
        return UpstreamRequest(url, headers, form.rewrite(replace))

    def response(self, endpoint: Endpoint, body: bytes) -> tuple[bytes, Usage | None]:
        try:
            decoded = _decoder.decode(body)
        except (msgspec.DecodeError, RecursionError):
            raise UpstreamError("The backend returned a response that is not JSON.") from None
        if not isinstance(decoded, dict):
            raise UpstreamError("The backend returned a response that is not a JSON object.")
        if endpoint.path == IMAGES.path:
            return body, image_usage(decoded)
        return body, Usage.from_openai(decoded.get("usage"))

    def stream(self, endpoint: Endpoint, payload: dict[str, Any], media_type: str = "") -> StreamTap:
        if endpoint.path == SPEECH.path:
            return RelayTap(speech_meter(payload["input"]), media_type)
        if endpoint.form:
            if payload.get("response_format") == "text" and media_type.startswith("application/json"):
                return TextTranscriptTap()  # asked for as JSON by ``upload``
            return RelayTap(transcript_usage, media_type, keep=KEEP_TRANSCRIPT)
        if endpoint.path == RESPONSES.path:
            return ResponsesStreamTap()
        options = payload.get("stream_options")
        client_wants_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        return OpenAIStreamTap(strip_usage_chunk=not client_wants_usage)

    def error(
        self, route: ModelRoute, status: int, body: bytes, retry_after: str | None, url: str = ""
    ) -> GatewayError:
        message, type_, param, code = error_fields(body)
        if status == 404 and not names_what_is_missing(body):
            return misconfigured(route, url, "does base_url end in /v1?")
        if status in (401, 403):
            # The backend refused *our* credential: the gateway's configuration, not the client's key.
            # Its message is not passed on: backends quote (part of) the key they were given.
            return UpstreamError(
                f"Backend '{route.backend.name}' rejected the gateway's credentials ({status}); "
                "check the backend's api_key_env.",
                code="backend_auth_failed",
            )
        if status >= 500 or status < 400:
            return UpstreamError(f"Backend '{route.backend.name}' failed with status {status}: {message}")
        return UpstreamRejected(status, message, type_=type_, param=param, code=code, retry_after=retry_after)


def names_what_is_missing(body: bytes) -> bool:
    """Whether a 404's body is an OpenAI error about something the request named (the model, a
    previous response), as opposed to a web server's answer for a URL it does not serve."""
    error = error_object(body)
    if error is None:
        return False
    message = str(error.get("message") or "")
    if message.startswith("Invalid URL"):  # OpenAI's own answer for a path it does not serve
        return False
    code, param = error.get("code"), error.get("param")
    return bool(param) or (isinstance(code, str) and code.endswith("not_found")) or "model" in message.lower()


def misconfigured(route: ModelRoute, url: str, hint: str) -> UpstreamError:
    """A backend with no such URL: the gateway's configuration is wrong, not the client's request,
    so the client gets a 502 rather than the backend's 404, and the operator a hint at the cause."""
    path = urlsplit(url).path or "the URL the gateway built"  # never the query: it may hold secrets
    return UpstreamError(
        f"Backend '{route.backend.name}' has no {path} (it answered 404 Not Found): its base_url is "
        f"probably wrong; {hint}",
        code="backend_misconfigured",
    )


def error_object(body: bytes) -> dict[str, Any] | None:
    """``{"error": {...}}``, ``{"error": "..."}`` (vLLM, Ollama) or vLLM's bare ``{"object": "error", ...}``."""
    try:
        decoded = _decoder.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return None
    if not isinstance(decoded, dict):
        return None
    error = decoded.get("error")
    if isinstance(error, str) and error:
        return {"message": error}
    if isinstance(error, dict):
        return error
    return decoded if decoded.get("object") == "error" else None


def _json_for_text(response_format: str) -> str:
    return "json" if response_format == "text" else response_format


def error_fields(body: bytes) -> tuple[str, str | None, str | None, str | None]:
    try:
        decoded = _decoder.decode(body)
    except (msgspec.DecodeError, RecursionError):
        text = body[:500].decode("utf-8", "replace").strip()
        return text or "no error message", None, None, None
    error = decoded.get("error") if isinstance(decoded, dict) else None
    if isinstance(error, dict):
        message = error.get("message")
        return (
            str(message) if message else "no error message",
            _str_or_none(error.get("type")),
            _str_or_none(error.get("param")),
            _str_or_none(error.get("code")),
        )
    if isinstance(error, str):  # vLLM and Ollama sometimes answer {"error": "..."}
        return error, None, None, None
    return body[:500].decode("utf-8", "replace"), None, None, None


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
