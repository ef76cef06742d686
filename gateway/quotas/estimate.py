"""A request's usage before it runs: what a reservation holds until the real usage settles it.

Prompt tokens are counted from the body (o200k) plus OpenAI's per-message overhead; images in a
prompt count a fixed allowance each. Output is the request's own cap (``max_completion_tokens``,
``max_tokens``, ``max_output_tokens``), else the version's default, else the quota file's
``default_output_tokens``. A backend that counts more than this estimate is where a limit can be
overshot: see the README's quota section for the bound.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from gateway.catalog.registry import ModelRoute
from gateway.ledger.tokens import count_text, prompt_text
from gateway.wire.endpoints import CHAT, COMPLETIONS, IMAGES, MESSAGES, RESPONSES, SPEECH, Endpoint
from gateway.wire.usage import Usage

PER_MESSAGE = 4  # role and separators, as OpenAI's own counting guide has it
PER_IMAGE = 1_105  # a high-detail 1024x1024 image on gpt-4o; smaller ones cost less
_json = msgspec.json.Encoder()
_CAPS = ("max_completion_tokens", "max_tokens", "max_output_tokens")
_GENERATES = {CHAT.path, COMPLETIONS.path, RESPONSES.path, MESSAGES.path}
# Longer prompts are counted on a worker thread: 10 MiB of text takes the tokenizer a second or
# so, which must not stall every other request. Shorter ones take well under a millisecond.
_INLINE_CHARS = 20_000


async def estimate_off_loop(
    payload: dict[str, Any], endpoint: Endpoint, route: ModelRoute, default_output: int
) -> Usage:
    """``estimate``, with a long prompt counted off the event loop."""
    if not _counts_prompt(endpoint):
        return estimate(payload, endpoint, route, default_output)
    text = _text(payload)
    prompt = await asyncio.to_thread(count_text, text) if len(text) > _INLINE_CHARS else count_text(text)
    return _usage(payload, endpoint, route, default_output, prompt)


def estimate(payload: dict[str, Any], endpoint: Endpoint, route: ModelRoute, default_output: int) -> Usage:
    if _counts_prompt(endpoint):
        return _usage(payload, endpoint, route, default_output, count_text(_text(payload)))
    if endpoint.path == IMAGES.path:
        n = payload.get("n", 1)
        return Usage(images=n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1)
    if endpoint.path == SPEECH.path:
        text = payload.get("input")
        return Usage(characters=len(text) if isinstance(text, str) else 0)
    return Usage()  # an upload's seconds are known only from the backend's answer


def _counts_prompt(endpoint: Endpoint) -> bool:
    return endpoint.path not in (IMAGES.path, SPEECH.path) and not endpoint.form


def _usage(payload: dict[str, Any], endpoint: Endpoint, route: ModelRoute, default_output: int, counted: int) -> Usage:
    """The estimate of a request whose prompt text counts ``counted`` tokens."""
    prompt = counted + _overhead(payload) + _token_arrays(payload.get("input"))
    output = (_cap(payload) or _cap(route.params) or default_output) if endpoint.path in _GENERATES else 0
    n = payload.get("n")
    choices = n if isinstance(n, int) and not isinstance(n, bool) and n > 1 else 1  # each choice is billed
    return Usage(prompt_tokens=prompt, completion_tokens=output * choices)


def _text(payload: dict[str, Any]) -> str:
    """Everything of the prompt that is text: messages, tool definitions, earlier tool calls'
    arguments, an Anthropic system prompt."""
    parts = [prompt_text(payload)]
    for name in ("tools", "functions", "system"):
        value = payload.get(name)
        if value:
            parts.append(value if isinstance(value, str) else _json.encode(value).decode())
    for message in payload.get("messages") or ():
        calls = message.get("tool_calls") if isinstance(message, dict) else None
        if calls:
            parts.append(_json.encode(calls).decode())
    return "\n".join(parts)


def _token_arrays(value: Any) -> int:
    """Inputs sent as token ids (embeddings, legacy completions) count one token per id."""
    if isinstance(value, list) and value and all(isinstance(t, int) for t in value):
        return len(value)
    if isinstance(value, list):
        return sum(len(item) for item in value if isinstance(item, list) and all(isinstance(t, int) for t in item))
    return 0


def _overhead(payload: dict[str, Any]) -> int:
    messages = payload.get("messages")
    if not isinstance(messages, list):
        return 0
    images = sum(
        1
        for message in messages
        if isinstance(message, dict) and isinstance(message.get("content"), list)
        for part in message["content"]
        if isinstance(part, dict) and part.get("type") in ("image_url", "image", "input_image")
    )
    return PER_MESSAGE * len(messages) + 3 + PER_IMAGE * images


def _cap(values: dict[str, Any]) -> int | None:
    for name in _CAPS:
        value = values.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None
