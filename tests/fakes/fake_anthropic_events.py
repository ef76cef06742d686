"""What the fake Anthropic Messages API answers: validation, errors, messages and stream events.

Pure functions without I/O, used by `fake_anthropic.FakeAnthropic`. Tokens are counted as
whitespace-separated words, as in the OpenAI fake, so tests can predict usage exactly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fakes.fake_markers import CONTEXT_LENGTH, Behaviour, retry_after_headers
from fakes.fake_validation import Json, RequestError, count_words

REPLY = "This is a fake reply from Anthropic."
TOOL_PREAMBLE = "Let me look that up."
TOOL_INPUT: Json = {"query": "fake"}
TOOL_JSON_PARTS = 3  # input_json_delta events per tool_use block
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_CACHE_MARKER = re.compile(r"(?<![a-z0-9])cache-(\d+)-(\d+)(?!\d)")


def error_type(status: int) -> str:
    """Anthropic's `error.type` for an HTTP status; unlisted ones fall back by class."""
    return ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def error_body(err: RequestError, request_id: str) -> Json:
    kind = err.error_type or error_type(err.status)
    return {"type": "error", "error": {"type": kind, "message": err.message}, "request_id": request_id}


MAX_PROMPT_TOKENS = 200000


def marker_error(behaviour: Behaviour) -> RequestError:
    """The error chosen by the markers (`error-<status>`, `contextlen`, ...); `error_status` must be set."""
    status = behaviour.error_status or 500
    if behaviour.error_kind == CONTEXT_LENGTH:  # Anthropic's words for it
        return RequestError(400, f"prompt is too long: {MAX_PROMPT_TOKENS + 1} tokens > {MAX_PROMPT_TOKENS} maximum")
    headers = retry_after_headers(status, behaviour.retry_after)
    return RequestError(status, f"fake anthropic error {status}", headers=headers)


def cache_marker(model: str) -> tuple[int, int]:
    """`cache-<read>-<write>`: (cache_read_input_tokens, cache_creation_input_tokens)."""
    found = _CACHE_MARKER.search(model.lower())
    return (int(found.group(1)), int(found.group(2))) if found else (0, 0)


# -- validation ------------------------------------------------------------------------------------


def _invalid(message: str) -> RequestError:
    return RequestError(400, message)


def validate(body: Any) -> Json:
    """The request body, if it is a minimally valid Messages request; raises `RequestError`."""
    if not isinstance(body, dict):
        raise _invalid("The request body must be a JSON object.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise _invalid("model: Field required")
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise _invalid("max_tokens: Field required and must be an integer greater than or equal to 1")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _invalid("messages: Field required and must be a non-empty list")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise _invalid(f"messages.{index}.role: Input should be 'user' or 'assistant'")
        if not isinstance(message.get("content"), str | list):
            raise _invalid(f"messages.{index}.content: Field required")
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        raise _invalid("system: Input should be a valid string or list of text blocks")
    if body.get("tools") is not None and not isinstance(body["tools"], list):
        raise _invalid("tools: Input should be a valid list")
    return body


# -- the answer ------------------------------------------------------------------------------------


def _text_words(content: Any) -> int:
    if isinstance(content, str):
        return count_words(content)
    if isinstance(content, list):
        return sum(
            count_words(block["text"])
            for block in content
            if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str)
        )
    return 0


def input_tokens(body: Json) -> int:
    """Words in the system prompt and in the messages' text blocks, at least 1."""
    words = _text_words(body.get("system")) + sum(_text_words(m["content"]) for m in body["messages"])
    return max(1, words)


def _tool_name(body: Json) -> str | None:
    """The tool to call, or None when the fake should answer with text."""
    tools = body.get("tools")
    last = body["messages"][-1]
    if not tools or last["role"] != "user":
        return None
    content = last["content"]
    if isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content):
        return None
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "none":
        return None
    if isinstance(choice, dict) and choice.get("type") == "tool" and isinstance(choice.get("name"), str):
        return str(choice["name"])
    first = tools[0]
    return str(first.get("name", "tool")) if isinstance(first, dict) else "tool"


@dataclass(slots=True)
class Answer:
    """A complete assistant turn, ready to be sent whole or as stream events."""

    message_id: str
    model: str
    text: str
    tool: Json | None  # a tool_use block
    stop_reason: str
    usage: Json

    def message(self) -> Json:
        content: list[Json] = [{"type": "text", "text": self.text}]
        if self.tool is not None:
            content.append(self.tool)
        return self._envelope(content, self.stop_reason, self.usage)

    def _envelope(self, content: list[Json], stop_reason: str | None, usage: Json) -> Json:
        return {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": usage,
        }

    def events(self) -> Iterator[tuple[str, Json]]:
        """The stream, in Anthropic's order, as (event type, data) pairs."""
        yield "message_start", {"type": "message_start", "message": self._envelope([], None, self._start_usage())}
        yield "content_block_start", {"type": "content_block_start", "index": 0, "content_block": _text_block("")}
        yield "ping", {"type": "ping"}
        for piece in _word_pieces(self.text):
            yield "content_block_delta", _delta(0, {"type": "text_delta", "text": piece})
        yield "content_block_stop", {"type": "content_block_stop", "index": 0}
        if self.tool is not None:
            yield from _tool_events(1, self.tool)
        delta = {"stop_reason": self.stop_reason, "stop_sequence": None}
        usage = {"output_tokens": self.usage["output_tokens"]}
        yield "message_delta", {"type": "message_delta", "delta": delta, "usage": usage}
        yield "message_stop", {"type": "message_stop"}

    def _start_usage(self) -> Json:
        return {**self.usage, "output_tokens": 1}


def _text_block(text: str) -> Json:
    return {"type": "text", "text": text}


def _delta(index: int, delta: Json) -> Json:
    return {"type": "content_block_delta", "index": index, "delta": delta}


def _word_pieces(text: str) -> list[str]:
    """One piece per word; the pieces concatenate back to `text`."""
    words = text.split(" ")
    return [words[0], *(" " + word for word in words[1:])] if text else []


def _tool_events(index: int, tool: Json) -> Iterator[tuple[str, Json]]:
    yield "content_block_start", {"type": "content_block_start", "index": index, "content_block": {**tool, "input": {}}}
    for part in split_json(json.dumps(tool["input"]), TOOL_JSON_PARTS):
        yield "content_block_delta", _delta(index, {"type": "input_json_delta", "partial_json": part})
    yield "content_block_stop", {"type": "content_block_stop", "index": index}


def split_json(text: str, parts: int) -> list[str]:
    """`text` cut into `parts` non-empty consecutive pieces (fewer when it is shorter)."""
    size = max(1, -(-len(text) // parts))
    return [text[start : start + size] for start in range(0, len(text), size)]


def _reply_words(count: int) -> str:
    words = REPLY.split()
    return " ".join(words[i % len(words)] for i in range(count))


def answer(body: Json, seq: int, behaviour: Behaviour) -> Answer:
    """The deterministic answer to a validated request (see the `fake_anthropic` docstring)."""
    model: str = body["model"]
    tool_name = _tool_name(body)
    tool: Json | None = None
    if tool_name is not None:
        text, stop_reason = TOOL_PREAMBLE, "tool_use"
        tool = {"type": "tool_use", "id": f"toolu_fake_{seq}", "name": tool_name, "input": dict(TOOL_INPUT)}
        output = count_words(text) + TOOL_JSON_PARTS
    elif behaviour.tokens is not None:
        text, stop_reason = _reply_words(behaviour.tokens[1]), "end_turn"
        output = behaviour.tokens[1]
    else:
        limit: int = body["max_tokens"]
        words = REPLY.split()
        text = " ".join(words[:limit])
        stop_reason = "max_tokens" if limit < len(words) else "end_turn"
        output = min(limit, len(words))
    if behaviour.tokens is not None:
        output = behaviour.tokens[1]
    cache_read, cache_write = cache_marker(model)
    usage = {
        "input_tokens": behaviour.tokens[0] if behaviour.tokens is not None else input_tokens(body),
        "output_tokens": output,
        "cache_creation_input_tokens": cache_write,
        "cache_read_input_tokens": cache_read,
    }
    return Answer(f"msg_fake_{seq}", model, text, tool, stop_reason, usage)


def sse_event(kind: str, data: Json) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"
