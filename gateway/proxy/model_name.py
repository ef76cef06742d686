"""Name the model the client asked for in every reply, plain and streamed.

Backends answer with their own id (an upstream model, an Azure deployment, a dated snapshot such
as ``gpt-4o-2024-08-06``); the client asked for a public name and is answered with it, unless the
model's configuration says ``reveal_upstream_model``. Streams are rewritten as bytes: a regular
expression over the lines that name a model, not a decode and re-encode of every chunk.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()
_NEEDLE = b'"model"'
# A "model" key and its string value. An unescaped quote cannot occur inside a JSON string, so
# this matches only keys, save one whose own text ends in an escaped quote (`"say \"model":`).
# Such a line takes the pattern with the lookbehind, five times slower: it defeats the search for
# the literal prefix.
_FIELD = re.compile(rb'"model"\s*:\s*"[^"\\]*(?:\\.[^"\\]*)*"')
_STRICT_FIELD = re.compile(rb'(?<!\\)"model"\s*:\s*"[^"\\]*(?:\\.[^"\\]*)*"')
_ESCAPED_NEEDLE = b'\\"model"'
_MAX_PARTIAL = 1 << 20  # a longer line is not SSE as we know it: passed on as it is

CHUNKS, RESPONSES, ANTHROPIC = "chunks", "responses", "anthropic"
"""Stream kinds: OpenAI chunks (chat, completions), Responses-API events, Anthropic events."""


class _Top(msgspec.Struct):
    model: Any = None


def _field(name: str) -> bytes:
    """``"model":"<name>"``, JSON-escaped, and escaped again as a ``re.sub`` template."""
    return (b'"model":' + _encoder.encode(name)).replace(b"\\", b"\\\\")


def rename_body(body: bytes, name: str) -> bytes:
    """A JSON reply whose top-level ``model`` (if it has one) is ``name``."""
    count = body.count(_NEEDLE)
    if count == 0:
        return body
    try:
        top = msgspec.json.decode(body, type=_Top)  # skips every other field without building it
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return body
    if not isinstance(top.model, str):
        return body
    if count == 1:  # the top level's own key is the only one: rewrite it in place
        return _sub(_field(name), body, count=1)
    # Nested "model" keys too (a Responses tool, an Anthropic tool's input): only the top one changes.
    reply = _decoder.decode(body)
    reply["model"] = name
    return _encoder.encode(reply)


def _sub(template: bytes, text: bytes, count: int = 0) -> bytes:
    pattern = _STRICT_FIELD if _ESCAPED_NEEDLE in text else _FIELD
    return pattern.sub(template, text, count=count)


class ModelRenamer:
    """A client tap (see ``proxy.ingress.ChainedTap``) that renames the model in an event stream.

    It works line by line (a ``data:`` line holds one JSON payload), holding back only a line not
    yet complete, which the client could not use before its end anyway."""

    def __init__(self, kind: str, name: str) -> None:
        self._kind = kind
        self._name = name
        self._field = b'"model":' + _encoder.encode(name)
        self._seen = b""  # the backend's own "model" field, once found
        self._template = _field(name)
        self._partial = b""

    def feed(self, data: bytes) -> bytes:
        if not self._partial and data.endswith(b"\n"):  # whole lines: the usual case, kept short
            if self._kind == CHUNKS:
                return self._rename_chunks(data)
            return self._rename(data) if _NEEDLE in data else data
        buffer = self._partial + data if self._partial else data
        end = buffer.rfind(b"\n") + 1
        if end == 0:
            if len(buffer) <= _MAX_PARTIAL:
                self._partial = buffer
                return b""
            end = len(buffer)
        complete, self._partial = buffer[:end], buffer[end:]
        return self._rename(complete) if _NEEDLE in complete else complete

    def close(self) -> bytes:
        rest, self._partial = self._partial, b""
        return self._rename(rest) if _NEEDLE in rest else rest

    def _rename(self, lines: bytes) -> bytes:
        if self._kind == CHUNKS:  # every chunk names the model at its top level, and only there
            return self._rename_chunks(lines)
        return b"\n".join(self._rename_event_line(line) for line in lines.split(b"\n"))

    def _rename_chunks(self, text: bytes) -> bytes:
        """Every ``"model":"..."`` replaced. A backend names one model throughout, so the field
        the pattern first found, with the ``{`` or ``,`` before it, is then replaced with
        ``bytes.replace``: three scans in C, less than the pattern's search. The counts show that
        no other ``"model"`` is in the text (a key's text ending in an escaped quote included)."""
        seen = self._seen
        if seen and text.count(seen) == text.count(_NEEDLE):
            return text.replace(seen, seen[:1] + self._field)
        match = _FIELD.search(text)
        if match is None:
            return text
        before = text[match.start() - 1 : match.start()]
        if before in (b"{", b",") and b"\\" not in match.group(0):  # else the pattern, every time
            self._seen = before + match.group(0)
        return _sub(self._template, text)

    def _rename_event_line(self, line: bytes) -> bytes:
        """The one event of a stream that names the model (Responses' ``response.*`` events carry
        the whole response, tools with their own ``model`` included): decoded, as it is rare."""
        if _NEEDLE not in line or not line.startswith(b"data:"):
            return line
        try:
            event = _decoder.decode(line[5:])
        except (msgspec.DecodeError, RecursionError):
            return line
        inner = event.get("response" if self._kind == RESPONSES else "message") if isinstance(event, dict) else None
        if not isinstance(inner, dict) or not isinstance(inner.get("model"), str):
            return line
        inner["model"] = self._name
        return b"data: " + _encoder.encode(event) + (b"\r" if line.endswith(b"\r") else b"")
