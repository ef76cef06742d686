"""`POST /v1/chat/completions` payloads of the fake upstream: a completion or its stream of chunks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from fakes.fake_markers import BehaviourLookup
from fakes.fake_payloads import Answer, Envelope, generate, include_usage, word_pieces
from fakes.fake_validation import (
    Json,
    count_words,
    max_tokens,
    require_messages,
    require_model,
    require_object,
)

TOOL_CALL_ARGUMENTS = "{}"


def chat(body: Any, seq: int, lookup: BehaviourLookup) -> Answer:
    body = require_object(body)
    model, messages = require_model(body), require_messages(body)
    behaviour = lookup(model)
    tool = chosen_tool(body, messages)
    gen = generate(behaviour, chat_prompt_tokens(messages), max_tokens(body), tool)
    env, call_id = Envelope(f"chatcmpl-fake-{seq}", int(time.time()), model, gen), f"call_fake_{seq}"
    if body.get("stream") is True:
        return Answer(behaviour, chunks=chat_chunks(env, call_id, include_usage(body)))
    return Answer(behaviour, payload=chat_completion(env, call_id))


def _content_words(content: Any) -> int:
    if isinstance(content, str):
        return count_words(content)
    if isinstance(content, list):  # content parts: only the text parts carry words
        return sum(
            count_words(part["text"])
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return 0


def chat_prompt_tokens(messages: list[Json]) -> int:
    return max(1, sum(_content_words(message.get("content")) for message in messages))


def _tool_name(tool: Any) -> str:
    if isinstance(tool, dict):
        function = tool.get("function")
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            return str(function["name"])
        if isinstance(tool.get("name"), str):
            return str(tool["name"])
    return "tool"


def chosen_tool(body: Json, messages: list[Json]) -> str | None:
    """Which tool to call: only when tools are offered and the user spoke last, as a real model would."""
    tools = body.get("tools")
    if not isinstance(tools, list) or not tools or messages[-1].get("role") != "user":
        return None
    choice = body.get("tool_choice")
    if choice == "none":
        return None
    if isinstance(choice, dict):  # {"type": "function", "function": {"name": ...}} forces that tool
        return _tool_name(choice)
    return _tool_name(tools[0])


def _tool_call(call_id: str, name: str, arguments: str = TOOL_CALL_ARGUMENTS) -> Json:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def chat_completion(env: Envelope, call_id: str) -> Json:
    gen = env.gen
    message: Json = {"role": "assistant", "content": " ".join(gen.words), "refusal": None}
    if gen.tool_name is not None:
        message["content"] = None
        message["tool_calls"] = [_tool_call(call_id, gen.tool_name)]
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": gen.finish_reason}
    return env.wrap("chat.completion", [choice], usage=env.usage())


def chat_chunks(env: Envelope, call_id: str, with_usage: bool) -> Iterator[Json]:
    nulls: Json = {"usage": None} if with_usage else {}  # OpenAI's explicit null before the usage chunk

    def chunk(delta: Json, finish: str | None = None) -> Json:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return env.wrap("chat.completion.chunk", [choice], **nulls)

    gen = env.gen
    if gen.tool_name is not None:
        call = {"index": 0, **_tool_call(call_id, gen.tool_name, "")}
        yield chunk({"role": "assistant", "content": None, "tool_calls": [call]})
        yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": TOOL_CALL_ARGUMENTS}}]})
    else:
        yield chunk({"role": "assistant", "content": ""})
        for piece in word_pieces(gen.words):
            yield chunk({"content": piece})
    yield chunk({}, gen.finish_reason)
    if with_usage:
        yield env.wrap("chat.completion.chunk", [], usage=env.usage())
