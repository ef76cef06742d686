"""Translate an OpenAI chat-completions request into an Anthropic Messages request body.

Anthropic rejects fields it does not know, so the body is built from an allow-list: every
OpenAI field is either translated, passed under its own name, or dropped on purpose.
"""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.errors import InvalidRequest

DEFAULT_MAX_TOKENS = 4096
"""Anthropic requires ``max_tokens``; OpenAI clients usually leave it out."""

# Everything else is dropped, notably logprobs, seed, presence/frequency_penalty, logit_bias and
# stream_options: OpenAI-only hints or extra reporting whose absence a client cannot rely on
# noticing, unlike n>1, which would silently return fewer choices and is refused instead.
_PASSED = ("temperature", "top_p", "top_k", "stream")
_JSON_ONLY = "Respond with a single valid JSON object only: no prose before or after it and no code fences."
_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()

Block = dict[str, Any]
Message = dict[str, Any]


def translate_request(payload: dict[str, Any], params: dict[str, Any], upstream_model: str) -> dict[str, Any]:
    """The Anthropic body for an OpenAI ``payload``; ``params`` are the route's defaults."""
    merged = {**params, **payload}
    n = merged.get("n")
    if n is not None and n != 1:
        raise InvalidRequest("This model's backend supports only n=1.", param="n")
    system, messages = _translate_messages(merged.get("messages") or [])
    instruction = _format_instruction(merged.get("response_format"))
    if instruction:
        system.append(instruction)
    body: dict[str, Any] = {"model": upstream_model, "max_tokens": _max_tokens(payload, params), "messages": messages}
    if system:
        body["system"] = "\n\n".join(system)
    body.update({name: merged[name] for name in _PASSED if merged.get(name) is not None})
    stop = merged.get("stop")
    if stop:
        body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if isinstance(merged.get("user"), str):
        body["metadata"] = {"user_id": merged["user"]}
    _add_tools(body, merged)
    return body


def _max_tokens(payload: dict[str, Any], params: dict[str, Any]) -> Any:
    # Client values win over route defaults, whichever of the two OpenAI names either side uses.
    for source in (payload, params):
        for name in ("max_completion_tokens", "max_tokens"):
            if source.get(name) is not None:
                return source[name]
    return DEFAULT_MAX_TOKENS


def _format_instruction(response_format: Any) -> str | None:
    """A system instruction standing in for ``response_format``.

    The basic Messages API has no JSON mode, so the model is asked for JSON in the system prompt;
    the reply is not checked, as OpenAI's own json_object mode only promises well-formed JSON.
    """
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    if kind == "json_object":
        return _JSON_ONLY
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if schema is None:
            return _JSON_ONLY
        return f"{_JSON_ONLY} It must conform to this JSON schema: {_encoder.encode(schema).decode()}"
    return None


def _translate_messages(raw: list[Any]) -> tuple[list[str], list[Message]]:
    system: list[str] = []
    messages: list[Message] = []
    for index, message in enumerate(raw):
        role = message.get("role") if isinstance(message, dict) else None
        if role in ("system", "developer"):
            text = _text_only(message.get("content"), index)
            if text:
                system.append(text)
        elif role == "user":
            _append(messages, "user", _user_blocks(message.get("content"), index))
        elif role == "assistant":
            _append(messages, "assistant", _assistant_blocks(message, index))
        elif role == "tool":
            _append(messages, "user", [_tool_result(message, index)])
        else:
            raise InvalidRequest(f"Unsupported role '{role}' in messages[{index}].", param=f"messages[{index}].role")
    for message in messages:
        if message["role"] == "user":
            # Anthropic wants a turn's tool results ahead of any text that accompanies them.
            message["content"].sort(key=lambda block: block["type"] != "tool_result")
    return system, messages


def _append(messages: list[Message], role: str, blocks: list[Block]) -> None:
    """Add a turn; Anthropic wants roles to alternate, so a same-role neighbour absorbs it."""
    if not blocks:
        return
    if messages and messages[-1]["role"] == role:
        messages[-1]["content"].extend(blocks)
    else:
        messages.append({"role": role, "content": blocks})


def _text_only(content: Any, index: int) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    texts = []
    for part in _parts(content, index):
        if part.get("type") != "text":
            raise InvalidRequest(
                f"messages[{index}]: only text parts are supported in system, developer and tool messages.",
                param=f"messages[{index}]",
            )
        texts.append(str(part.get("text") or ""))
    return "\n".join(text for text in texts if text)


def _parts(content: Any, index: int) -> list[dict[str, Any]]:
    if not isinstance(content, list) or not all(isinstance(part, dict) for part in content):
        raise InvalidRequest(
            f"messages[{index}].content must be a string or an array of content parts.",
            param=f"messages[{index}].content",
        )
    return content


def _user_blocks(content: Any, index: int) -> list[Block]:
    if content is None or isinstance(content, str):
        return _text_block(content)
    blocks: list[Block] = []
    for part in _parts(content, index):
        kind = part.get("type")
        if kind == "text":
            blocks.extend(_text_block(part.get("text")))
        elif kind == "image_url":
            blocks.append(_image_block(part.get("image_url"), index))
        else:
            raise InvalidRequest(
                f"messages[{index}]: content parts of type '{kind}' are not supported by this model's backend.",
                param=f"messages[{index}].content",
            )
    return blocks


def _text_block(text: Any) -> list[Block]:
    # Anthropic refuses empty text blocks; an empty string adds nothing anyway.
    return [{"type": "text", "text": text}] if isinstance(text, str) and text else []


def _image_block(image: Any, index: int) -> Block:
    url = image.get("url") if isinstance(image, dict) else image
    if isinstance(url, str) and url.startswith("data:"):
        header, _, data = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if encoding == "base64" and media_type and data:
            return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    elif isinstance(url, str) and url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise InvalidRequest(
        f"messages[{index}]: an image_url must be an http(s) URL or a base64 data: URL.",
        param=f"messages[{index}].content",
    )


def _assistant_blocks(message: dict[str, Any], index: int) -> list[Block]:
    content = message.get("content")
    blocks = _text_block(content) if content is None or isinstance(content, str) else _assistant_parts(content, index)
    for call in message.get("tool_calls") or []:
        blocks.append(_tool_use(call, index))
    return blocks


def _assistant_parts(content: Any, index: int) -> list[Block]:
    blocks: list[Block] = []
    for part in _parts(content, index):
        if part.get("type") == "text":
            blocks.extend(_text_block(part.get("text")))
        # "refusal" parts are the model's own earlier refusal: nothing to resend.
    return blocks


def _tool_use(call: Any, index: int) -> Block:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise InvalidRequest(f"messages[{index}].tool_calls: each call needs a function name.", param="messages")
    arguments = function.get("arguments") or "{}"
    try:
        decoded = _decoder.decode(arguments) if isinstance(arguments, str) else None
    except (msgspec.DecodeError, RecursionError):
        decoded = None
    if not isinstance(decoded, dict):
        raise InvalidRequest(
            f"messages[{index}].tool_calls: the arguments of '{function['name']}' are not a JSON object.",
            param=f"messages[{index}].tool_calls",
        )
    return {"type": "tool_use", "id": call.get("id"), "name": function["name"], "input": decoded}


def _tool_result(message: dict[str, Any], index: int) -> Block:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str):
        raise InvalidRequest(
            f"Missing required parameter: 'messages[{index}].tool_call_id'.",
            param=f"messages[{index}].tool_call_id",
            code="missing_required_parameter",
        )
    return {"type": "tool_result", "tool_use_id": call_id, "content": _text_only(message.get("content"), index)}


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
    function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise InvalidRequest(f"tools[{index}] must be a function tool with a name.", param=f"tools[{index}]")
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
    function = choice.get("function") if isinstance(choice, dict) else None
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        return {"type": "tool", "name": function["name"]}
    raise InvalidRequest("tool_choice must be 'auto', 'required', 'none' or a named function.", param="tool_choice")
