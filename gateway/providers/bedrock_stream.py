"""Relay a Bedrock ConverseStream reply as OpenAI ``chat.completion.chunk`` events.

ConverseStream answers in AWS event-stream framing (``application/vnd.amazon.eventstream``):
binary messages, each with a prelude, headers and a JSON payload, both checksummed. botocore's
parser reassembles them from reads of any size. ``messageStop`` carries the stop reason and the
``metadata`` event after it the usage, so the finish chunk goes out at the first and the usage
chunk and ``[DONE]`` at the second (or at the end of the stream, should metadata never come).
"""

from __future__ import annotations

from typing import Any

import msgspec
from botocore.eventstream import EventStreamBuffer, ParserError  # type: ignore[import-untyped]

from gateway.providers.bedrock_response import error_type, finish_reason, new_completion_id, usage_of
from gateway.providers.openai_chat import openai_usage
from gateway.providers.openai_chunks import DONE, MIDSTREAM_ERROR, ChunkTap, error_event

_decoder = msgspec.json.Decoder()


class BedrockStreamTap(ChunkTap):
    def __init__(self, *, include_usage: bool, model: str = "") -> None:
        super().__init__(include_usage=include_usage, completion_id=new_completion_id(), model=model)
        self._buffer = EventStreamBuffer()
        self._started = False
        self._stopped = False
        # Bedrock content-block index -> the tool call's position among the tool-use blocks.
        self._tool_calls: dict[int, int] = {}

    def feed(self, data: bytes) -> bytes:
        if self._broken or not data:
            return b""
        self._buffer.add_data(data)
        out = b""
        try:
            for message in self._buffer:
                out += self._translate(message.headers, message.payload)
                if self._broken:
                    break
        except ParserError:
            self._broken = True
            out += error_event("The backend sent a malformed event stream.", "api_error", "upstream_error")
        self.forwarded += out
        return out

    def close(self) -> bytes:
        # A stream that stopped but sent no metadata still ends properly, only without usage.
        out = self._done() if self._stopped and not self.finished and not self._broken else b""
        self.forwarded += out
        return out

    def _translate(self, headers: dict[str, Any], payload: bytes) -> bytes:
        kind = headers.get(":message-type")
        if kind == "exception":
            return self._exception(headers.get(":exception-type"), _parse(payload))
        if kind == "error":
            message = headers.get(":error-message")
            return self._exception(headers.get(":error-code"), {"message": message})
        if kind != "event" or self.finished:
            return b""
        event = _parse(payload)
        name = headers.get(":event-type")
        if name == "messageStart":
            return self._start()
        if name == "contentBlockStart":
            return self._start() + self._block_start(event.get("contentBlockIndex"), event.get("start"))
        if name == "contentBlockDelta":
            return self._start() + self._block_delta(event.get("contentBlockIndex"), event.get("delta"))
        if name == "messageStop":
            return self._start() + self._message_stop(event.get("stopReason"))
        if name == "metadata":
            return self._metadata(event.get("usage"))
        return b""  # contentBlockStop and event types added after this was written

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return self._role_chunk()

    def _block_start(self, index: Any, start: Any) -> bytes:
        tool_use = start.get("toolUse") if isinstance(start, dict) else None
        if not isinstance(tool_use, dict) or not isinstance(index, int):
            return b""  # text blocks start with their first delta
        position = self._tool_calls[index] = len(self._tool_calls)
        return self._tool_call_start(position, str(tool_use.get("toolUseId") or ""), str(tool_use.get("name") or ""))

    def _block_delta(self, index: Any, delta: Any) -> bytes:
        if not isinstance(delta, dict):
            return b""
        text = delta.get("text")
        if isinstance(text, str) and text:
            return self._chunk({"content": text})
        tool_use = delta.get("toolUse")
        arguments = tool_use.get("input") if isinstance(tool_use, dict) else None
        if isinstance(arguments, str) and arguments:
            position = self._tool_calls.get(index) if isinstance(index, int) else None
            if position is None:
                return b""
            return self._tool_call_arguments(position, arguments)
        return b""  # reasoning and citation deltas have no chat.completion counterpart

    def _message_stop(self, stop_reason: Any) -> bytes:
        if self._stopped:
            return b""
        self._stopped = True
        out = self._chunk({}, finish_reason(stop_reason))
        return out + (self._done() if self.usage is not None else b"")

    def _metadata(self, usage: Any) -> bytes:
        found = usage_of(usage)
        if found is not None:
            self.usage = found
        return self._done() if self._stopped else b""

    def _done(self) -> bytes:
        self.finished = True
        if not self._include_usage or self.usage is None:
            return DONE
        return self._usage_chunk(openai_usage(self.usage)) + DONE

    def _exception(self, name: Any, body: dict[str, Any]) -> bytes:
        # Bedrock ends the stream after an exception: nothing after it is relayed.
        self._broken = True
        type_, code = error_type(name if isinstance(name, str) else None, "api_error")
        message = body.get("message") or body.get("Message")
        text = message if isinstance(message, str) and message else MIDSTREAM_ERROR
        return error_event(text, type_, code)


def _parse(payload: bytes) -> dict[str, Any]:
    """An event's JSON payload; empty for anything unreadable."""
    try:
        event = _decoder.decode(payload) if payload else None
    except (msgspec.DecodeError, RecursionError):
        return {}
    return event if isinstance(event, dict) else {}
