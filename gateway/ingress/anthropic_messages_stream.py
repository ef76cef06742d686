"""Relay an OpenAI ``chat.completion.chunk`` stream as an Anthropic Messages event stream.

Anthropic's stream is strictly nested: ``message_start``; then, per content block,
``content_block_start``, its deltas and ``content_block_stop``; then ``message_delta`` (stop
reason and usage) and ``message_stop``. OpenAI's chunks carry no block boundaries, so a block is
opened when its first text or tool-call fragment arrives and closed when the next block opens or
the choice finishes. The stop reason and final usage are only both known at ``[DONE]`` (the usage
chunk follows the finishing chunk), so ``message_delta`` and ``message_stop`` are sent there.

The helpers shared with the non-streaming translation (ids, stop reasons, usage, error bodies) live
here too, so that ``anthropic_messages`` can re-export this module without a circular import.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from gateway.wire.usage import Usage

_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()
_EVENT_END = b"\n\n"
_MAX_PARTIAL = 1 << 20  # an OpenAI chunk is a small delta; a larger one is not a stream we know

_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
# OpenAI in-band error ``type`` or ``code`` -> Anthropic error type; anything else is api_error.
_STREAM_ERROR_TYPES = {
    "invalid_request_error": "invalid_request_error",
    "authentication_error": "authentication_error",
    "invalid_api_key": "authentication_error",
    "permission_error": "permission_error",
    "not_found_error": "not_found_error",
    "rate_limit_error": "rate_limit_error",
    "rate_limit_exceeded": "rate_limit_error",
    "overloaded": "overloaded_error",
    "overloaded_error": "overloaded_error",
}


def message_id(openai_id: Any) -> str:
    """A ``msg_`` id for an OpenAI completion id; undoes the gateway's own ``chatcmpl-msg_`` wrapping."""
    if not isinstance(openai_id, str) or not openai_id:
        return f"msg_{uuid.uuid4().hex}"
    base = openai_id.removeprefix("chatcmpl-")
    return base if base.startswith("msg_") else f"msg_{base}"


def tool_use_id(openai_id: Any) -> str:
    return openai_id if isinstance(openai_id, str) and openai_id else f"toolu_{uuid.uuid4().hex}"


def stop_reason(finish_reason: Any, has_tool_calls: bool) -> str:
    """Anthropic's stop reason; a turn that called tools is ``tool_use`` even if a backend said ``stop``."""
    reason = _STOP_REASONS.get(finish_reason, "end_turn") if isinstance(finish_reason, str) else "end_turn"
    return "tool_use" if has_tool_calls and reason == "end_turn" else reason


def anthropic_usage(usage: Usage) -> dict[str, int]:
    """Anthropic counts cache reads and writes apart from ``input_tokens``; OpenAI's prompt count
    includes them."""
    return {
        "input_tokens": max(usage.prompt_tokens - usage.cached_tokens - usage.cache_write_tokens, 0),
        "output_tokens": usage.completion_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
    }


def stream_error_type(error: dict[str, Any]) -> str:
    for key in ("code", "type"):
        value = error.get(key)
        if isinstance(value, str) and value in _STREAM_ERROR_TYPES:
            return _STREAM_ERROR_TYPES[value]
    return "api_error"


class AnthropicEventStream:
    """A ``StreamTap``: OpenAI chunk SSE in (any byte split), Anthropic event SSE out."""

    def __init__(self, model: str | None) -> None:
        self._model = model
        """The model the events name; None: the backend's, from its first chunk."""
        self._partial = b""
        self._started = False
        self._ended = False  # [DONE] or an error went by: nothing more is relayed
        self._next_index = 0
        self._open: int | None = None  # the index of the content block now open
        self._open_is_text = False
        self._tools: dict[int, int] = {}  # OpenAI tool-call index -> Anthropic block index
        self._finish: str | None = None
        self.usage: Usage | None = None
        self.finished = False
        self.forwarded = bytearray()

    def feed(self, data: bytes) -> bytes:
        buffer = self._partial + data if self._partial else data
        if b"\r" in buffer:
            # A CRLF split across two reads is rejoined here, since the trailing \r stays partial.
            buffer = buffer.replace(b"\r\n", b"\n")
        *events, self._partial = buffer.split(_EVENT_END)
        out = b"".join(self._translate(event) for event in events)
        if len(self._partial) > _MAX_PARTIAL:
            self._partial = b""
            out += self._error({"message": "The backend sent an event too large to relay."})
        self.forwarded += out
        return out

    def close(self) -> bytes:
        # A last event without its blank line still counts: the backend may close right after it.
        rest, self._partial = self._partial, b""
        out = self._translate(rest) if rest.strip() else b""
        self.forwarded += out
        return out

    def _translate(self, raw: bytes) -> bytes:
        if self._ended:
            return b""
        lines = raw.split(b"\n")
        data = [line[5:].removeprefix(b" ") for line in lines if line.startswith(b"data:")]
        if not data:
            # A comment is a keep-alive; Anthropic's is a ping (never before message_start).
            keep_alive = self._started and any(line.startswith(b":") for line in lines)
            return _event("ping", {"type": "ping"}) if keep_alive else b""
        payload = b"\n".join(data)
        if payload.strip() == b"[DONE]":
            return self._done()
        try:
            chunk = _decoder.decode(payload)
        except (msgspec.DecodeError, RecursionError):
            return b""
        if not isinstance(chunk, dict):
            return b""
        if isinstance(chunk.get("error"), dict) and not chunk.get("choices"):
            return self._error(chunk["error"])
        return self._chunk(chunk)

    def _chunk(self, chunk: dict[str, Any]) -> bytes:
        usage = Usage.from_openai(chunk.get("usage"))
        if usage is not None:
            self.usage = usage
        out = b"" if self._started else self._message_start(chunk.get("id"), chunk.get("model"))
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue  # n>1 has no Anthropic counterpart: only the first choice is relayed
            delta = choice.get("delta")
            if isinstance(delta, dict):
                out += self._delta(delta)
            if choice.get("finish_reason"):
                self._finish = str(choice["finish_reason"])
                out += self._close_block()
        return out

    def _message_start(self, openai_id: Any, backend_model: Any) -> bytes:
        self._started = True
        message: dict[str, Any] = {
            "id": message_id(openai_id),
            "type": "message",
            "role": "assistant",
            "model": self._model if self._model is not None else str(backend_model or ""),
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": anthropic_usage(self.usage or Usage()),
        }
        return _event("message_start", {"type": "message_start", "message": message})

    def _delta(self, delta: dict[str, Any]) -> bytes:
        out = b""
        for key in ("content", "refusal"):
            text = delta.get(key)
            if isinstance(text, str) and text:
                out += self._text(text)
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else []:
            if isinstance(call, dict):
                out += self._tool_call(call)
        return out

    def _text(self, text: str) -> bytes:
        out = b"" if self._open is not None and self._open_is_text else self._open_block({"type": "text", "text": ""})
        return out + self._block_delta(self._open, {"type": "text_delta", "text": text})

    def _tool_call(self, call: dict[str, Any]) -> bytes:
        position = self._tool_position(call)
        function = call.get("function")
        function = function if isinstance(function, dict) else {}
        out = b""
        if position not in self._tools:
            name = function.get("name")
            block: dict[str, Any] = {
                "type": "tool_use",
                "id": tool_use_id(call.get("id")),
                "name": name or "",
                "input": {},
            }
            out = self._open_block(block)
            self._tools[position] = self._next_index - 1
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            # A fragment for an already closed call (interleaved parallel calls) keeps its own index.
            out += self._block_delta(self._tools[position], {"type": "input_json_delta", "partial_json": arguments})
        return out

    def _tool_position(self, call: dict[str, Any]) -> int:
        index = call.get("index")
        if isinstance(index, int) and not isinstance(index, bool):
            return index
        # No index (some backends): a call with an id is a new one, a bare fragment continues the last.
        return len(self._tools) if call.get("id") or not self._tools else len(self._tools) - 1

    def _open_block(self, block: dict[str, Any]) -> bytes:
        out = self._close_block()
        self._open, self._open_is_text = self._next_index, block["type"] == "text"
        self._next_index += 1
        return out + _event(
            "content_block_start", {"type": "content_block_start", "index": self._open, "content_block": block}
        )

    def _block_delta(self, index: int | None, delta: dict[str, Any]) -> bytes:
        return _event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})

    def _close_block(self) -> bytes:
        if self._open is None:
            return b""
        index, self._open = self._open, None
        return _event("content_block_stop", {"type": "content_block_stop", "index": index})

    def _done(self) -> bytes:
        self._ended = self.finished = True
        out = b"" if self._started else self._message_start(None, None)
        out += self._close_block()
        delta = {"stop_reason": stop_reason(self._finish, bool(self._tools)), "stop_sequence": None}
        # Usage in message_delta is cumulative; the input counts are only known now, so they go too.
        out += _event(
            "message_delta", {"type": "message_delta", "delta": delta, "usage": anthropic_usage(self.usage or Usage())}
        )
        return out + _event("message_stop", {"type": "message_stop"})

    def _error(self, error: dict[str, Any]) -> bytes:
        self._ended = True
        message: Any = error.get("message")
        message = message if isinstance(message, str) and message else "The backend reported an error mid-stream."
        body = {"type": "error", "error": {"type": stream_error_type(error), "message": message}}
        return _event("error", body)


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + _encoder.encode(data) + _EVENT_END
