"""Relay an Anthropic Messages event stream as OpenAI ``chat.completion.chunk`` events.

Each complete Anthropic event is translated as soon as it arrives; only a partial event waits.
Anthropic announces input tokens in ``message_start`` and the final output count in
``message_delta``, so usage is known (and kept) before ``message_stop`` whatever the client asked.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from gateway.ledger.exchange import Usage
from gateway.providers.anthropic_response import (
    completion_id,
    finish_reason,
    openai_error_type,
    openai_usage,
    usage_of,
)

_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()
_EVENT_END = b"\n\n"
_DONE = b"data: [DONE]\n\n"
_MAX_PARTIAL = 1 << 20  # Anthropic's events are small deltas; a larger one is not a stream we know


class AnthropicStreamTap:
    def __init__(self, *, include_usage: bool) -> None:
        self._include_usage = include_usage
        self._partial = b""
        self._broken = False
        self._id = completion_id(None)
        self._model = ""
        self._created = int(time.time())
        self._start_usage: dict[str, Any] = {}
        # Anthropic content-block index -> the tool call's position among the tool_use blocks.
        self._tool_calls: dict[int, int] = {}
        self.usage: Usage | None = None
        self.finished = False
        self.forwarded = bytearray()

    def feed(self, data: bytes) -> bytes:
        if self._broken:
            return b""
        buffer = self._partial + data if self._partial else data
        if b"\r" in buffer:
            # A CRLF split across two reads is rejoined here, since the trailing \r stays partial.
            buffer = buffer.replace(b"\r\n", b"\n")
        *events, self._partial = buffer.split(_EVENT_END)
        out = b"".join(self._translate(event) for event in events)
        if len(self._partial) > _MAX_PARTIAL:
            self._broken, self._partial = True, b""
            out += _error_event("The backend sent an event too large to relay.", "api_error", "upstream_error")
        self.forwarded += out
        return out

    def error(self, event: bytes) -> bytes:
        self.forwarded += event
        return event  # already in the OpenAI schema this tap emits

    def close(self) -> bytes:
        # A last event without its blank line still counts: the backend may close right after it.
        rest, self._partial = self._partial, b""
        out = self._translate(rest) if rest.strip() and not self._broken else b""
        self.forwarded += out
        return out

    def _translate(self, raw: bytes) -> bytes:
        event = _parse(raw)
        if event is None:
            return b""
        kind = event.get("type")
        if kind == "message_start":
            return self._message_start(event.get("message"))
        if kind == "content_block_start":
            return self._block_start(event.get("index"), event.get("content_block"))
        if kind == "content_block_delta":
            return self._block_delta(event.get("index"), event.get("delta"))
        if kind == "message_delta":
            return self._message_delta(event.get("delta"), event.get("usage"))
        if kind == "message_stop":
            return self._message_stop()
        if kind == "error":
            return self._error(event.get("error"))
        return b""  # ping, content_block_stop and event types added after this was written

    def _message_start(self, message: Any) -> bytes:
        if not isinstance(message, dict):
            return b""
        self._id = completion_id(message.get("id"))
        self._model = str(message.get("model") or "")
        usage = message.get("usage")
        self._start_usage = usage if isinstance(usage, dict) else {}
        self.usage = usage_of(self._start_usage)
        return self._chunk({"role": "assistant", "content": ""})

    def _block_start(self, index: Any, block: Any) -> bytes:
        if not isinstance(block, dict) or block.get("type") != "tool_use" or not isinstance(index, int):
            return b""  # text blocks start empty; their text comes as deltas
        position = self._tool_calls[index] = len(self._tool_calls)
        call = {
            "index": position,
            "id": str(block.get("id") or ""),
            "type": "function",
            "function": {"name": str(block.get("name") or ""), "arguments": ""},
        }
        return self._chunk({"tool_calls": [call]})

    def _block_delta(self, index: Any, delta: Any) -> bytes:
        if not isinstance(delta, dict):
            return b""
        if delta.get("type") == "text_delta" and delta.get("text"):
            return self._chunk({"content": str(delta["text"])})
        if delta.get("type") == "input_json_delta" and delta.get("partial_json"):
            position = self._tool_calls.get(index) if isinstance(index, int) else None
            if position is None:
                return b""
            call = {"index": position, "function": {"arguments": str(delta["partial_json"])}}
            return self._chunk({"tool_calls": [call]})
        return b""  # thinking and signature deltas have no chat.completion counterpart

    def _message_delta(self, delta: Any, usage: Any) -> bytes:
        if isinstance(usage, dict):
            # message_delta's counts are cumulative and may restate input counts: newest wins.
            known = {name: value for name, value in usage.items() if value is not None}
            self.usage = usage_of({**self._start_usage, **known})
        stop_reason = delta.get("stop_reason") if isinstance(delta, dict) else None
        if stop_reason is None:
            return b""
        return self._chunk({}, finish_reason(stop_reason))

    def _message_stop(self) -> bytes:
        self.finished = True
        if not self._include_usage or self.usage is None:
            return _DONE
        chunk = {**self._envelope(), "choices": [], "usage": openai_usage(self.usage)}
        return _data(chunk) + _DONE

    def _error(self, error: Any) -> bytes:
        error = error if isinstance(error, dict) else {}
        type_, code = openai_error_type(_str(error.get("type")), "api_error")
        message = _str(error.get("message")) or "The backend reported an error mid-stream."
        return _error_event(message, type_, code)

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return _data({**self._envelope(), "choices": [choice]})

    def _envelope(self) -> dict[str, Any]:
        return {"id": self._id, "object": "chat.completion.chunk", "created": self._created, "model": self._model}


def _parse(raw: bytes) -> dict[str, Any] | None:
    """The JSON payload of one SSE event; None for comments, keep-alives and anything unreadable."""
    data = [line[5:].lstrip(b" ") for line in raw.split(b"\n") if line.startswith(b"data:")]
    if not data:
        return None
    try:
        event = _decoder.decode(b"\n".join(data))
    except (msgspec.DecodeError, RecursionError):
        return None
    return event if isinstance(event, dict) else None


def _data(obj: dict[str, Any]) -> bytes:
    return b"data: " + _encoder.encode(obj) + _EVENT_END


def _error_event(message: str, type_: str, code: str | None) -> bytes:
    return _data({"error": {"message": message, "type": type_, "param": None, "code": code}})


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
