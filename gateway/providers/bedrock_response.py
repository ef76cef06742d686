"""Translate Bedrock Runtime replies (Converse, Titan embeddings) into OpenAI's.

Shared with the stream translation: finish reasons, usage, ids and the error types. Converse
replies carry neither an id nor the model's name: ids are made up here, unique per reply.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from gateway.errors import UpstreamError
from gateway.providers.openai_chat import (
    cached_prompt_usage,
    chat_completion,
    choice_message,
    mapped_finish_reason,
    openai_usage,
)
from gateway.wire.usage import Usage

_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()
_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
# Bedrock's exception names (``__type``, ``:exception-type``), lower-cased -> OpenAI type and code.
_ERROR_TYPES = {
    "validationexception": ("invalid_request_error", None),
    "resourcenotfoundexception": ("invalid_request_error", "not_found"),
    "throttlingexception": ("rate_limit_error", "rate_limit_exceeded"),
    "servicequotaexceededexception": ("rate_limit_error", "rate_limit_exceeded"),
    "serviceunavailableexception": ("api_error", "overloaded"),
    "modelnotreadyexception": ("api_error", "overloaded"),
    "modeltimeoutexception": ("api_error", "upstream_timeout"),
    "internalserverexception": ("api_error", "upstream_error"),
    "modelstreamerrorexception": ("api_error", "upstream_error"),
    "modelerrorexception": ("api_error", "upstream_error"),
}


_USAGE_KEYS = (
    "inputTokens",
    "cacheReadInputTokens",
    "cacheWriteInputTokens",
    "outputTokens",
)  # input, cache read, cache write, output


def finish_reason(stop_reason: Any) -> str:
    return mapped_finish_reason(_FINISH_REASONS, stop_reason)


def usage_of(usage: Any) -> Usage | None:
    return cached_prompt_usage(usage, _USAGE_KEYS)


def new_completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def error_type(name: str | None, default: str) -> tuple[str, str | None]:
    """OpenAI's ``type`` and ``code`` for a Bedrock exception name; ``default`` when it has no match."""
    return _ERROR_TYPES.get(exception_name(name), (default, None))


def exception_name(raw: Any) -> str:
    """``ThrottlingException`` from ``com.amazon.coral.service#ThrottlingException:http://...``, lower-cased."""
    if not isinstance(raw, str):
        return ""
    return raw.rpartition("#")[2].partition(":")[0].strip().lower()


def translate_response(body: bytes, model: str = "") -> tuple[bytes, Usage | None]:
    reply = _decode(body)
    output = reply.get("output")
    message = output.get("message") if isinstance(output, dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list):
        raise UpstreamError("The backend returned a response that is not a Converse reply.")
    usage = usage_of(reply.get("usage"))
    completion = chat_completion(
        new_completion_id(),
        model,
        _choice_message(content),
        finish_reason(reply.get("stopReason")),
        openai_usage(usage) if usage is not None else None,
    )
    return completion, usage


def _decode(body: bytes) -> dict[str, Any]:
    try:
        reply = _decoder.decode(body)
    except (msgspec.DecodeError, RecursionError):
        raise UpstreamError("The backend returned a response that is not JSON.") from None
    if not isinstance(reply, dict):
        raise UpstreamError("The backend returned a response that is not a JSON object.")
    return reply


def _choice_message(content: list[Any]) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in content:
        if not isinstance(block, dict):
            raise UpstreamError("The backend returned a malformed content block.")
        if isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif isinstance(block.get("toolUse"), dict):
            calls.append(tool_call(block["toolUse"]))
        # reasoningContent, citations and guard content have no chat.completion counterpart
    return choice_message(texts, calls)


def tool_call(tool_use: dict[str, Any]) -> dict[str, Any]:
    arguments = tool_use.get("input")
    return {
        "id": str(tool_use.get("toolUseId") or ""),
        "type": "function",
        "function": {
            "name": str(tool_use.get("name") or ""),
            "arguments": _encoder.encode(arguments if arguments is not None else {}).decode(),
        },
    }
