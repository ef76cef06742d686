"""Relay a Gemini ``streamGenerateContent?alt=sse`` stream as OpenAI ``chat.completion.chunk`` events.

Each Gemini event is a whole ``GenerateContentResponse`` holding the next piece of the reply; the
one carrying a ``finishReason`` ends the turn and usually the final ``usageMetadata``. Gemini sends
no end marker of its own, so ``[DONE]`` follows that event at once. Function calls arrive whole and
are relayed as one tool-call chunk each.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from gateway.errors import UpstreamError
from gateway.ledger.exchange import Usage
from gateway.providers.gemini_response import (
    block_reason,
    candidate_parts,
    completion_id,
    finish_reason,
    first_candidate,
    openai_usage,
    tool_call,
    usage_of,
    visible_text,
)

_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()
_EVENT_END = b"\n\n"
_DONE = b"data: [DONE]\n\n"
_MAX_PARTIAL = 4 << 20  # a chunk may carry a whole inline image; larger is not a stream we know
_ERROR_TYPES = {
    "INVALID_ARGUMENT": ("invalid_request_error", None),
    "RESOURCE_EXHAUSTED": ("rate_limit_error", "rate_limit_exceeded"),
    "UNAVAILABLE": ("api_error", "overloaded"),
    "DEADLINE_EXCEEDED": ("api_error", "upstream_timeout"),
}


class GeminiStreamTap:
    def __init__(self, *, include_usage: bool) -> None:
        self._include_usage = include_usage
        self._partial = b""
        self._broken = False
        self._started = False
        self._id = completion_id(None)
        self._model = ""
        self._created = int(time.time())
        self._calls = 0
        self._metadata: Any = None
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
        response = _parse(raw)
        if response is None:
            return b""
        if "error" in response:
            return self._error(response["error"])
        metadata = response.get("usageMetadata")
        if isinstance(metadata, dict):
            # Each event restates the counts so far: the newest is the most complete.
            self._metadata, self.usage = metadata, usage_of(metadata)
        if self.finished:
            return b""
        out = b"" if self._started else self._start(response)
        candidate = first_candidate(response)
        try:
            parts = candidate_parts(candidate)
        except UpstreamError:
            parts = []
        out += b"".join(self._part(part) for part in parts)
        reason = candidate.get("finishReason")
        if reason is None and not candidate and block_reason(response):
            reason = "SAFETY"  # the prompt itself was blocked: no candidate will follow
        if reason is not None:
            out += self._finish(reason)
        return out

    def _start(self, response: dict[str, Any]) -> bytes:
        self._started = True
        self._id = completion_id(response.get("responseId"))
        self._model = str(response.get("modelVersion") or "")
        return self._chunk({"role": "assistant", "content": ""})

    def _part(self, part: dict[str, Any]) -> bytes:
        text = visible_text(part)
        if text:
            return self._chunk({"content": text})
        if "functionCall" in part:
            call = {"index": self._calls, **tool_call(part["functionCall"], self._calls)}
            self._calls += 1
            return self._chunk({"tool_calls": [call]})
        return b""  # thought summaries and parts without a chat.completion counterpart

    def _finish(self, reason: Any) -> bytes:
        self.finished = True
        out = self._chunk({}, finish_reason(reason, self._calls > 0))
        if self._include_usage and self.usage is not None:
            chunk = {**self._envelope(), "choices": [], "usage": openai_usage(self.usage, self._metadata)}
            out += _data(chunk)
        return out + _DONE

    def _error(self, error: Any) -> bytes:
        error = error if isinstance(error, dict) else {}
        status = error.get("status")
        type_, code = _ERROR_TYPES.get(status if isinstance(status, str) else "", ("api_error", None))
        message = error.get("message")
        text = message if isinstance(message, str) and message else "The backend reported an error mid-stream."
        return _error_event(text, type_, code)

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
