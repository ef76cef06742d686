"""Translate an OpenAI chat-completions request into an Anthropic Messages request body.

Anthropic rejects fields it does not know, so the body is built from an allow-list: every
OpenAI field is either translated, passed under its own name, or dropped on purpose.
"""

from __future__ import annotations

from typing import Any

from gateway.providers.openai_chat import (
    assistant_text,
    bad_image,
    data_url,
    image_url,
    json_instruction,
    max_tokens,
    merged_request,
    named_function,
    stop_sequences,
    text_only,
    tool_call_function,
    tool_call_id,
    tool_function,
    user_items,
    walk_messages,
)

DEFAULT_MAX_TOKENS = 4096
"""Anthropic requires ``max_tokens``; OpenAI clients usually leave it out."""

# Everything else is dropped, notably logprobs, seed, presence/frequency_penalty, logit_bias and
# stream_options: OpenAI-only hints or extra reporting whose absence a client cannot rely on
# noticing, unlike n>1, which would silently return fewer choices and is refused instead.
_PASSED = ("temperature", "top_p", "top_k", "stream")
_JSON_ONLY = "Respond with a single valid JSON object only: no prose before or after it and no code fences."

Block = dict[str, Any]
Message = dict[str, Any]


def translate_request(payload: dict[str, Any], params: dict[str, Any], upstream_model: str) -> dict[str, Any]:
    """The Anthropic body for an OpenAI ``payload``; ``params`` are the route's defaults."""
    merged = merged_request(payload, params)
    system, messages = _translate_messages(merged.get("messages") or [])
    instruction = _format_instruction(merged.get("response_format"))
    if instruction:
        system.append(instruction)
    body: dict[str, Any] = {
        "model": upstream_model,
        "max_tokens": max_tokens(payload, params, DEFAULT_MAX_TOKENS),
        "messages": messages,
    }
    if system:
        body["system"] = "\n\n".join(system)
    body.update({name: merged[name] for name in _PASSED if merged.get(name) is not None})
    stop = stop_sequences(merged.get("stop"))
    if stop:
        body["stop_sequences"] = stop
    if isinstance(merged.get("user"), str):
        body["metadata"] = {"user_id": merged["user"]}
    _add_tools(body, merged)
    return body


def _format_instruction(response_format: Any) -> str | None:
    """A system instruction standing in for ``response_format``.

    The basic Messages API has no JSON mode, so the model is asked for JSON in the system prompt;
    the reply is not checked, as OpenAI's own json_object mode only promises well-formed JSON.
    """
    return json_instruction(response_format, _JSON_ONLY, "It must conform to this JSON schema:")


def _translate_messages(raw: list[Any]) -> tuple[list[str], list[Message]]:
    system, messages = walk_messages(raw, user=_user_blocks, assistant=_assistant_blocks, tool=_tool_result)
    for message in messages:
        if message["role"] == "user":
            # Anthropic wants a turn's tool results ahead of any text that accompanies them.
            message["content"].sort(key=lambda block: block["type"] != "tool_result")
    return system, messages


def _user_blocks(content: Any, index: int) -> list[Block]:
    return user_items(content, index, _text_block, {"image_url": _image_block})


def _text_block(text: Any) -> list[Block]:
    # Anthropic refuses empty text blocks; an empty string adds nothing anyway.
    return [{"type": "text", "text": text}] if isinstance(text, str) and text else []


def _image_block(image: Any, index: int) -> Block:
    url = image_url(image)
    parsed = data_url(url)
    if parsed is not None:
        media_type, encoding, data = parsed
        if encoding == "base64" and media_type and data:
            return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    elif isinstance(url, str) and url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise bad_image(index)


def _assistant_blocks(message: dict[str, Any], index: int) -> list[Block]:
    blocks = assistant_text(message.get("content"), index, _text_block)
    for call in message.get("tool_calls") or []:
        blocks.append(_tool_use(call, index))
    return blocks


def _tool_use(call: Any, index: int) -> Block:
    name, decoded = tool_call_function(call, index)
    return {"type": "tool_use", "id": call.get("id"), "name": name, "input": decoded}


def _tool_result(message: dict[str, Any], index: int) -> Block:
    call_id = tool_call_id(message, index)
    return {"type": "tool_result", "tool_use_id": call_id, "content": text_only(message.get("content"), index)}


def _add_tools(body: dict[str, Any], merged: dict[str, Any]) -> None:
    tools = merged.get("tools")
    if tools:
        body["tools"] = [_tool(tool, index) for index, tool in enumerate(tools)]
    choice = _tool_choice(merged.get("tool_choice"))
    if merged.get("parallel_tool_calls") is False and tools:
        choice = choice or {"type": "auto"}
        if choice["type"] != "none":  # Anthropic takes the flag on auto, any and tool only
            choice["disable_parallel_tool_use"] = True
    if choice is not None:
        body["tool_choice"] = choice


def _tool(tool: Any, index: int) -> Block:
    function = tool_function(tool, index)
    out: Block = {"name": function["name"]}
    if function.get("description"):
        out["description"] = function["description"]
    out["input_schema"] = function.get("parameters") or {"type": "object", "properties": {}}
    return out


def _tool_choice(choice: Any) -> Block | None:
    if choice is None:
        return None
    simple = {"auto": "auto", "required": "any", "none": "none"}
    if isinstance(choice, str) and choice in simple:
        return {"type": simple[choice]}
    return {"type": "tool", "name": named_function(choice)}
