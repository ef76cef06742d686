"""Relay an OpenAI server-sent-event stream as it arrives, reading usage on the way.

Events are forwarded as soon as they are complete; only a partial event waits for its end.
The usage-only chunk (``choices: []``) the gateway asked for is removed again when the client
did not ask for it itself. Forwarded bytes are kept so that a stream cut short can still be
counted (see ``ledger.tokens``).
"""

from __future__ import annotations

import msgspec

from gateway.wire.usage import Usage

_decoder = msgspec.json.Decoder()
_EVENT_END = b"\n\n"
_MAX_PARTIAL = 1 << 20  # an event larger than this is forwarded unparsed


class OpenAIStreamTap:
    def __init__(self, *, strip_usage_chunk: bool) -> None:
        self._strip = strip_usage_chunk
        self._partial = b""
        self.usage: Usage | None = None
        self.finished = False
        self.forwarded = bytearray()

    def feed(self, data: bytes) -> bytes:
        buffer = self._partial + data if self._partial else data
        if b"\r\n" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n")
        end = buffer.rfind(_EVENT_END)
        if end < 0:
            if len(buffer) <= _MAX_PARTIAL:
                self._partial = buffer
                return b""
            end = len(buffer) - 2  # not SSE as we know it: pass it on rather than hoard it
        complete, self._partial = buffer[: end + 2], buffer[end + 2 :]
        out = self._filter(complete) if b'"usage"' in complete else complete
        if b"[DONE]" in complete:
            self.finished = True
        self.forwarded += out
        return out

    def error(self, event: bytes) -> bytes:
        self.forwarded += event
        return event  # already in the OpenAI schema this tap emits

    def close(self) -> bytes:
        rest, self._partial = self._partial, b""
        if rest.strip():
            rest = self._filter(rest + _EVENT_END)
            self.finished = self.finished or b"[DONE]" in rest
        self.forwarded += rest
        return rest

    def _filter(self, events: bytes) -> bytes:
        kept = []
        for event in events.split(_EVENT_END):
            if not event.strip():
                continue
            if b'"usage"' in event and self._is_usage_only(event):
                continue
            kept.append(event + _EVENT_END)
        return b"".join(kept)

    def _is_usage_only(self, event: bytes) -> bool:
        """Record usage from the event; True when the event exists only to carry it and should go."""
        for line in event.split(b"\n"):
            if not line.startswith(b"data:"):
                continue
            try:
                chunk = _decoder.decode(line[5:])
            except (msgspec.DecodeError, RecursionError):
                return False
            if not isinstance(chunk, dict):
                return False
            usage = Usage.from_openai(chunk.get("usage"))
            if usage is None:
                return False
            self.usage = usage
            return self._strip and not chunk.get("choices")
        return False
