"""Offline token counting, for requests whose backend never reported usage (a stream cut short,
a moderation).

Uses ``bpe-openai``'s bundled o200k encoding; backends with other tokenizers are approximated,
which is the best that can be done for tokens the backend produced but never accounted for.
The encoding takes about 1 s and 140 MB to load, so it loads on first use, on a worker thread
(callers run ``estimate_stream_usage`` off the event loop).
"""

from __future__ import annotations

import functools
from typing import Any

import msgspec

from gateway.wire.usage import Usage

_decoder = msgspec.json.Decoder()


@functools.cache
def _encoding() -> Any:
    import bpe_openai

    return bpe_openai.get_encoding("o200k_base")


def count_text(text: str) -> int:
    return len(_encoding().encode_ordinary(text)) if text else 0


def prompt_text(payload: dict[str, Any]) -> str:
    """The text of a chat or completion request: message contents, text parts, or the prompt."""
    parts: list[str] = []
    for message in payload.get("messages") or []:
        if isinstance(message, dict):
            _collect(message.get("content"), parts)
    _collect(payload.get("prompt"), parts)
    _collect(payload.get("instructions"), parts)
    input_ = payload.get("input")  # Responses API: a string or a list of messages
    for item in input_ if isinstance(input_, list) else [input_]:
        # A Responses-API message, a moderation's text part, or plain text.
        _collect(item.get("content", [item]) if isinstance(item, dict) else item, parts)
    return "\n".join(parts)


def _collect(content: Any, parts: list[str]) -> None:
    if isinstance(content, str):
        parts.append(content)
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])


def streamed_text(events: bytes) -> str:
    """Concatenate the generated text of OpenAI chat or completion chunks."""
    parts: list[str] = []
    for line in events.split(b"\n"):
        if not line.startswith(b"data:") or line[5:].strip() == b"[DONE]":
            continue
        try:
            chunk = _decoder.decode(line[5:])
        except (msgspec.DecodeError, RecursionError):
            continue
        if isinstance(chunk, dict) and chunk.get("type") == "response.output_text.delta":
            delta = chunk.get("delta")
            parts.append(delta if isinstance(delta, str) else "")
            continue
        choices = chunk.get("choices") if isinstance(chunk, dict) else None
        for choice in choices if isinstance(choices, list) else []:
            if isinstance(choice, dict):
                _collect_choice(choice, parts)
    return "".join(parts)


def _collect_choice(choice: dict[str, Any], parts: list[str]) -> None:
    delta = choice.get("delta")
    delta = delta if isinstance(delta, dict) else {}
    for value in (delta.get("content"), choice.get("text")):
        if isinstance(value, str):
            parts.append(value)
    calls = delta.get("tool_calls")
    for call in calls if isinstance(calls, list) else []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict) and isinstance(function.get("arguments"), str):
            parts.append(function["arguments"])


def estimate_stream_usage(payload: dict[str, Any], forwarded: bytes) -> Usage:
    return Usage(
        prompt_tokens=count_text(prompt_text(payload)),
        completion_tokens=count_text(streamed_text(forwarded)),
    )


def estimate_reply_usage(payload: dict[str, Any], reply: bytes) -> Usage:
    """For a whole (not streamed) reply that came without usage: its request's text, and the text
    of its choices if it has any (a moderation has none)."""
    try:
        decoded = _decoder.decode(reply)
    except (msgspec.DecodeError, RecursionError):
        decoded = None
    parts: list[str] = []
    choices = decoded.get("choices") if isinstance(decoded, dict) else None
    for choice in choices if isinstance(choices, list) else []:
        if isinstance(choice, dict):
            message = choice.get("message")
            _collect(message.get("content") if isinstance(message, dict) else choice.get("text"), parts)
    return Usage(prompt_tokens=count_text(prompt_text(payload)), completion_tokens=count_text("".join(parts)))
