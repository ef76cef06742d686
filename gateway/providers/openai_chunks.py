"""Emit OpenAI ``chat.completion.chunk`` server-sent events, for the taps that translate a stream.

``ChunkTap`` holds what every translating tap keeps (``usage``, ``finished``, ``forwarded``) and
writes the chunks (role, content, tool-call, finish, usage, ``[DONE]``) in the OpenAI schema.
``SSEChunkTap`` adds the reading of a backend's own SSE stream, event by event.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from gateway.wire.usage import Usage

_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()
EVENT_END = b"\n\n"
DONE = b"data: [DONE]\n\n"
MIDSTREAM_ERROR = "The backend reported an error mid-stream."


def data(obj: dict[str, Any]) -> bytes:
    return b"data: " + _encoder.encode(obj) + EVENT_END


def error_event(message: str, type_: str, code: str | None) -> bytes:
    return data({"error": {"message": message, "type": type_, "param": None, "code": code}})


def parse_sse(raw: bytes) -> dict[str, Any] | None:
    """The JSON payload of one SSE event; None for comments, keep-alives and anything unreadable."""
    lines = [line[5:].lstrip(b" ") for line in raw.split(b"\n") if line.startswith(b"data:")]
    if not lines:
        return None
    try:
        event = _decoder.decode(b"\n".join(lines))
    except (msgspec.DecodeError, RecursionError):
        return None
    return event if isinstance(event, dict) else None


class ChunkTap:
    """The bookkeeping and chunk writing shared by the taps that translate into OpenAI chunks."""

    def __init__(self, *, include_usage: bool, completion_id: str, model: str = "") -> None:
        self._include_usage = include_usage
        self._broken = False
        self._id = completion_id
        self._model = model
        self._created = int(time.time())
        self.usage: Usage | None = None
        self.finished = False
        self.forwarded = bytearray()

    def error(self, event: bytes) -> bytes:
        self.forwarded += event
        return event  # already in the OpenAI schema this tap emits

    def _role_chunk(self) -> bytes:
        return self._chunk({"role": "assistant", "content": ""})

    def _tool_call_start(self, position: int, call_id: str, name: str) -> bytes:
        call = {"index": position, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
        return self._chunk({"tool_calls": [call]})

    def _tool_call_arguments(self, position: int, arguments: str) -> bytes:
        return self._chunk({"tool_calls": [{"index": position, "function": {"arguments": arguments}}]})

    def _usage_chunk(self, usage: dict[str, Any]) -> bytes:
        return data({**self._envelope(), "choices": [], "usage": usage})

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return data({**self._envelope(), "choices": [choice]})

    def _envelope(self) -> dict[str, Any]:
        return {"id": self._id, "object": "chat.completion.chunk", "created": self._created, "model": self._model}


class SSEChunkTap(ChunkTap):
    """A ``ChunkTap`` reading a backend SSE stream: each complete event goes to ``_translate``."""

    _max_partial = 1 << 20

    def __init__(self, *, include_usage: bool, completion_id: str, model: str = "") -> None:
        super().__init__(include_usage=include_usage, completion_id=completion_id, model=model)
        self._partial = b""

    def feed(self, data: bytes) -> bytes:
        if self._broken:
            return b""
        buffer = self._partial + data if self._partial else data
        if b"\r" in buffer:
            # A CRLF split across two reads is rejoined here, since the trailing \r stays partial.
            buffer = buffer.replace(b"\r\n", b"\n")
        *events, self._partial = buffer.split(EVENT_END)
        out = b"".join(self._translate(event) for event in events)
        if len(self._partial) > self._max_partial:
            self._broken, self._partial = True, b""
            out += error_event("The backend sent an event too large to relay.", "api_error", "upstream_error")
        self.forwarded += out
        return out

    def close(self) -> bytes:
        # A last event without its blank line still counts: the backend may close right after it.
        rest, self._partial = self._partial, b""
        out = self._translate(rest) if rest.strip() and not self._broken else b""
        self.forwarded += out
        return out

    def _translate(self, raw: bytes) -> bytes:
        raise NotImplementedError
