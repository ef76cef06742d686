"""Relay an Anthropic Messages event stream as OpenAI ``chat.completion.chunk`` events.

Each complete Anthropic event is translated as soon as it arrives; only a partial event waits.
Anthropic announces input tokens in ``message_start`` and the final output count in
``message_delta``, so usage is known (and kept) before ``message_stop`` whatever the client asked.
"""

from __future__ import annotations

from typing import Any

from gateway.providers.anthropic_response import (
    completion_id,
    finish_reason,
    openai_error_type,
    usage_of,
)
from gateway.providers.openai_chat import openai_usage
from gateway.providers.openai_chunks import DONE, MIDSTREAM_ERROR, SSEChunkTap, error_event, parse_sse


class AnthropicStreamTap(SSEChunkTap):
    _max_partial = 1 << 20  # Anthropic's events are small deltas; a larger one is not a stream we know

    def __init__(self, *, include_usage: bool) -> None:
        super().__init__(include_usage=include_usage, completion_id=completion_id(None))
        self._start_usage: dict[str, Any] = {}
        # Anthropic content-block index -> the tool call's position among the tool_use blocks.
        self._tool_calls: dict[int, int] = {}

    def _translate(self, raw: bytes) -> bytes:
        event = parse_sse(raw)
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
        return self._role_chunk()

    def _block_start(self, index: Any, block: Any) -> bytes:
        if not isinstance(block, dict) or block.get("type") != "tool_use" or not isinstance(index, int):
            return b""  # text blocks start empty; their text comes as deltas
        position = self._tool_calls[index] = len(self._tool_calls)
        return self._tool_call_start(position, str(block.get("id") or ""), str(block.get("name") or ""))

    def _block_delta(self, index: Any, delta: Any) -> bytes:
        if not isinstance(delta, dict):
            return b""
        if delta.get("type") == "text_delta" and delta.get("text"):
            return self._chunk({"content": str(delta["text"])})
        if delta.get("type") == "input_json_delta" and delta.get("partial_json"):
            position = self._tool_calls.get(index) if isinstance(index, int) else None
            if position is None:
                return b""
            return self._tool_call_arguments(position, str(delta["partial_json"]))
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
            return DONE
        return self._usage_chunk(openai_usage(self.usage)) + DONE

    def _error(self, error: Any) -> bytes:
        error = error if isinstance(error, dict) else {}
        type_, code = openai_error_type(_str(error.get("type")), "api_error")
        message = _str(error.get("message")) or MIDSTREAM_ERROR
        return error_event(message, type_, code)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
