"""Relay a Gemini ``streamGenerateContent?alt=sse`` stream as OpenAI ``chat.completion.chunk`` events.

Each Gemini event is a whole ``GenerateContentResponse`` holding the next piece of the reply; the
one carrying a ``finishReason`` ends the turn and usually the final ``usageMetadata``. Gemini sends
no end marker of its own, so ``[DONE]`` follows that event at once. Function calls arrive whole and
are relayed as one tool-call chunk each.
"""

from __future__ import annotations

from typing import Any

from gateway.errors import UpstreamError
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
from gateway.providers.openai_chunks import DONE, MIDSTREAM_ERROR, SSEChunkTap, error_event, parse_sse

_ERROR_TYPES = {
    "INVALID_ARGUMENT": ("invalid_request_error", None),
    "RESOURCE_EXHAUSTED": ("rate_limit_error", "rate_limit_exceeded"),
    "UNAVAILABLE": ("api_error", "overloaded"),
    "DEADLINE_EXCEEDED": ("api_error", "upstream_timeout"),
}


class GeminiStreamTap(SSEChunkTap):
    _max_partial = 4 << 20  # a chunk may carry a whole inline image; larger is not a stream we know

    def __init__(self, *, include_usage: bool) -> None:
        super().__init__(include_usage=include_usage, completion_id=completion_id(None))
        self._started = False
        self._calls = 0
        self._metadata: Any = None

    def _translate(self, raw: bytes) -> bytes:
        response = parse_sse(raw)
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
        return self._role_chunk()

    def _part(self, part: dict[str, Any]) -> bytes:
        text = visible_text(part)
        if text:
            return self._chunk({"content": text})
        if "functionCall" in part:
            call = {"index": self._calls, **tool_call(part, self._calls)}
            self._calls += 1
            return self._chunk({"tool_calls": [call]})
        return b""  # thought summaries and parts without a chat.completion counterpart

    def _finish(self, reason: Any) -> bytes:
        self.finished = True
        out = self._chunk({}, finish_reason(reason, self._calls > 0))
        if self._include_usage and self.usage is not None:
            out += self._usage_chunk(openai_usage(self.usage, self._metadata))
        return out + DONE

    def _error(self, error: Any) -> bytes:
        error = error if isinstance(error, dict) else {}
        status = error.get("status")
        type_, code = _ERROR_TYPES.get(status if isinstance(status, str) else "", ("api_error", None))
        message = error.get("message")
        text = message if isinstance(message, str) and message else MIDSTREAM_ERROR
        return error_event(text, type_, code)
