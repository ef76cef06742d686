"""Translate an Anthropic Messages response into an OpenAI ``chat.completion``."""

from __future__ import annotations

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
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    # A server tool paused a long turn; the OpenAI client sees a finished turn it may continue.
    "pause_turn": "stop",
}


_USAGE_KEYS = (
    "input_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "output_tokens",
)  # input, cache read, cache write, output


def finish_reason(stop_reason: Any) -> str:
    return mapped_finish_reason(_FINISH_REASONS, stop_reason)


def usage_of(usage: Any) -> Usage | None:
    return cached_prompt_usage(usage, _USAGE_KEYS)


def completion_id(message_id: Any) -> str:
    return f"chatcmpl-{message_id}" if isinstance(message_id, str) and message_id else "chatcmpl-anthropic"


def translate_response(body: bytes) -> tuple[bytes, Usage | None]:
    message = _decode_message(body)
    usage = usage_of(message.get("usage"))
    completion = chat_completion(
        completion_id(message.get("id")),
        str(message.get("model") or ""),
        _choice_message(message["content"]),
        finish_reason(message.get("stop_reason")),
        openai_usage(usage) if usage is not None else None,
    )
    return completion, usage


def _decode_message(body: bytes) -> dict[str, Any]:
    try:
        message = _decoder.decode(body)
    except (msgspec.DecodeError, RecursionError):
        raise UpstreamError("The backend returned a response that is not JSON.") from None
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        raise UpstreamError("The backend returned a response that is not an Anthropic message.")
    return message


def _choice_message(content: list[Any]) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in content:
        if not isinstance(block, dict):
            raise UpstreamError("The backend returned a malformed content block.")
        if block.get("type") == "text":
            texts.append(str(block.get("text") or ""))
        elif block.get("type") == "tool_use":
            calls.append(_tool_call(block))
        # thinking and server-tool blocks have no chat.completion counterpart
    return choice_message(texts, calls)


def _tool_call(block: dict[str, Any]) -> dict[str, Any]:
    arguments = _encoder.encode(block.get("input") or {}).decode()
    return {
        "id": str(block.get("id") or ""),
        "type": "function",
        "function": {"name": str(block.get("name") or ""), "arguments": arguments},
    }


_ERROR_TYPES = {
    "invalid_request_error": ("invalid_request_error", None),
    "not_found_error": ("invalid_request_error", "not_found"),
    "request_too_large": ("invalid_request_error", "request_too_large"),
    "rate_limit_error": ("rate_limit_error", "rate_limit_exceeded"),
    "overloaded_error": ("api_error", "overloaded"),
    "api_error": ("api_error", None),
    "timeout_error": ("api_error", "upstream_timeout"),
}


def openai_error_type(anthropic_type: str | None, default: str) -> tuple[str, str | None]:
    """OpenAI's ``type`` and ``code`` for an Anthropic error type; ``default`` when it has no match."""
    return _ERROR_TYPES.get(anthropic_type or "", (default, None))
