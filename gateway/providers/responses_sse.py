"""Relay a Responses-API event stream as it arrives (OpenAI in, OpenAI out), reading its usage.

Unlike chat streams there is nothing to strip: usage arrives inside the final
``response.completed`` (or ``response.incomplete`` / ``response.failed``) event, which clients get
anyway, and there is no ``[DONE]``; that final event is the stream's own end.
"""

from __future__ import annotations

import msgspec

from gateway.wire.usage import Usage

_decoder = msgspec.json.Decoder()
_FINAL = (b"response.completed", b"response.incomplete", b"response.failed")


class ResponsesStreamTap:
    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.finished = False
        self.forwarded = bytearray()
        self._partial = b""

    def feed(self, data: bytes) -> bytes:
        self.forwarded += data
        buffer = self._partial + data
        end = buffer.rfind(b"\n\n")
        complete, self._partial = (buffer[: end + 2], buffer[end + 2 :]) if end >= 0 else (b"", buffer)
        if len(self._partial) > 1 << 20:  # not SSE as we know it: stop looking for its end
            self._partial = b""
        if any(kind in complete for kind in _FINAL):
            self._read_final(complete)
        return data

    def close(self) -> bytes:
        if self._partial and any(kind in self._partial for kind in _FINAL):
            self._read_final(self._partial)
        return b""

    def error(self, event: bytes) -> bytes:
        self.forwarded += event
        return event

    def _read_final(self, events: bytes) -> None:
        for line in events.replace(b"\r\n", b"\n").split(b"\n"):
            if not line.startswith(b"data:"):
                continue
            try:
                event = _decoder.decode(line[5:])
            except (msgspec.DecodeError, RecursionError):
                continue
            response = event.get("response") if isinstance(event, dict) else None
            if isinstance(response, dict) and event.get("type", "").encode() in _FINAL:
                self.usage = Usage.from_openai(response.get("usage")) or self.usage
                self.finished = True
