"""Translate an OpenAI request into a Bedrock Runtime request body (Converse, or Titan embeddings).

Converse rejects fields it does not know, so the body is built from an allow-list: every OpenAI
field is either translated or dropped on purpose. The model is named in the URL, not the body.
"""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.errors import InvalidRequest, UnsupportedEndpoint

DEFAULT_MAX_TOKENS = 4096
"""Sent when neither the client nor the route says: some models' own default is very short."""

# Dropped on purpose: logprobs, seed, presence/frequency_penalty, logit_bias, user, top_k (model
# specific on Bedrock) and stream_options: hints or reporting whose absence a client tolerates.
_JSON_ONLY = "Answer with one valid JSON object and nothing else: no prose around it and no code fences."
_IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()

Block = dict[str, Any]
Message = dict[str, Any]


def translate_request(payload: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The Converse body for an OpenAI chat ``payload``; ``params`` are the route's defaults."""
    merged = {**params, **payload}
    n = merged.get("n")
    if n is not None and n != 1:
        raise InvalidRequest("This model's backend supports only n=1.", param="n")
    system, messages = _translate_messages(merged.get("messages") or [])
    instruction = _format_instruction(merged.get("response_format"))
    if instruction:
        system.append(instruction)
    body: dict[str, Any] = {"messages": messages}
    if system:
        body["system"] = [{"text": text} for text in system]
    config: dict[str, Any] = {"maxTokens": _max_tokens(payload, params)}
    if merged.get("temperature") is not None:
        config["temperature"] = merged["temperature"]
    if merged.get("top_p") is not None:
        config["topP"] = merged["top_p"]
    stop = merged.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    body["inferenceConfig"] = config
    tool_config = _tool_config(merged, messages)
    if tool_config is not None:
        body["toolConfig"] = tool_config
    return body


def embeddings_request(payload: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """A Titan text-embeddings ``invoke`` body: one text per call, so only a single input."""
    merged = {**params, **payload}
    raw = merged.get("input")
    if isinstance(raw, list) and len(raw) == 1:
        raw = raw[0]
    if isinstance(raw, list) and raw and all(isinstance(item, str) for item in raw):
        raise UnsupportedEndpoint(
            "This model's backend (Bedrock Titan embeddings) embeds one text per request: "
            "send 'input' as a single string."
        )
    if not isinstance(raw, str) or not raw:
        raise InvalidRequest("This model's backend takes 'input' as one non-empty string, not tokens.", param="input")
    body: dict[str, Any] = {"inputText": raw}
    dimensions = merged.get("dimensions")
    if isinstance(dimensions, int) and not isinstance(dimensions, bool):
        body["dimensions"] = dimensions
    return body


def _max_tokens(payload: dict[str, Any], params: dict[str, Any]) -> Any:
    # Client values win over route defaults, whichever of the two OpenAI names either side uses.
    for source in (payload, params):
        for name in ("max_completion_tokens", "max_tokens"):
            if source.get(name) is not None:
                return source[name]
    return DEFAULT_MAX_TOKENS


def _format_instruction(response_format: Any) -> str | None:
    """A system instruction standing in for ``response_format``: Converse has no JSON mode."""
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
        return f"{_JSON_ONLY} The object must match this JSON schema: {_encoder.encode(schema).decode()}"
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
            # Tool results answer the turn before: they go ahead of any text sent along with them.
            message["content"].sort(key=lambda block: "toolResult" not in block)
    return system, messages


def _append(messages: list[Message], role: str, blocks: list[Block]) -> None:
    """Add a turn; Converse wants roles to alternate, so a same-role neighbour absorbs it."""
    if not blocks:
        return
    if messages and messages[-1]["role"] == role:
        messages[-1]["content"].extend(blocks)
    else:
        messages.append({"role": role, "content": blocks})


def _parts(content: Any, index: int) -> list[dict[str, Any]]:
    if not isinstance(content, list) or not all(isinstance(part, dict) for part in content):
        raise InvalidRequest(
            f"messages[{index}].content must be a string or an array of content parts.",
            param=f"messages[{index}].content",
        )
    return content


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


def _text_block(text: Any) -> list[Block]:
    # Converse refuses blank text blocks; an empty string adds nothing anyway.
    return [{"text": text}] if isinstance(text, str) and text.strip() else []


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


def _image_block(image: Any, index: int) -> Block:
    url = image.get("url") if isinstance(image, dict) else image
    param = f"messages[{index}].content"
    if not isinstance(url, str) or not url.startswith("data:"):
        raise InvalidRequest(
            f"messages[{index}]: this model's backend (Amazon Bedrock) takes images only as base64 data: URLs, "
            "not links it would have to fetch.",
            param=param,
        )
    header, _, data = url[5:].partition(",")
    media_type, _, encoding = header.partition(";")
    image_format = _IMAGE_FORMATS.get(media_type.lower())
    if encoding != "base64" or not data:
        raise InvalidRequest(f"messages[{index}]: an image data: URL must be base64-encoded.", param=param)
    if image_format is None:
        raise InvalidRequest(
            f"messages[{index}]: images must be PNG, JPEG, GIF or WebP, not '{media_type}'.", param=param
        )
    # Blobs travel base64-encoded in Bedrock's JSON, so the data is passed on as it came.
    return {"image": {"format": image_format, "source": {"bytes": data}}}


def _assistant_blocks(message: dict[str, Any], index: int) -> list[Block]:
    content = message.get("content")
    blocks: list[Block] = []
    if content is None or isinstance(content, str):
        blocks.extend(_text_block(content))
    else:
        for part in _parts(content, index):
            if part.get("type") == "text":
                blocks.extend(_text_block(part.get("text")))
            # "refusal" parts are the model's own earlier refusal: nothing to resend.
    for call in message.get("tool_calls") or []:
        blocks.append(_tool_use(call, index))
    return blocks


def _tool_use(call: Any, index: int) -> Block:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise InvalidRequest(f"messages[{index}].tool_calls: each call needs a function name.", param="messages")
    if not isinstance(call.get("id"), str) or not call["id"]:
        raise InvalidRequest(
            f"messages[{index}].tool_calls: each call needs an id.", param=f"messages[{index}].tool_calls"
        )
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
    return {"toolUse": {"toolUseId": call["id"], "name": function["name"], "input": decoded}}


def _tool_result(message: dict[str, Any], index: int) -> Block:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequest(
            f"Missing required parameter: 'messages[{index}].tool_call_id'.",
            param=f"messages[{index}].tool_call_id",
            code="missing_required_parameter",
        )
    text = _text_only(message.get("content"), index)
    # Converse refuses a blank text block even inside a tool result.
    return {"toolResult": {"toolUseId": call_id, "content": [{"text": text if text.strip() else "(empty)"}]}}


def _tool_config(merged: dict[str, Any], messages: list[Message]) -> dict[str, Any] | None:
    tools = merged.get("tools")
    choice = merged.get("tool_choice")
    specs = [_tool(tool, index) for index, tool in enumerate(tools)] if tools else []
    bedrock_choice = _tool_choice(choice)
    if not specs:
        return None
    if choice == "none":
        # Converse has no "none": leave the tools out, unless the history holds tool blocks, which
        # Converse accepts only alongside a toolConfig (the model may then still call one).
        used = any("toolUse" in block or "toolResult" in block for m in messages for block in m["content"])
        return {"tools": specs} if used else None
    config: dict[str, Any] = {"tools": specs}
    if bedrock_choice is not None:
        config["toolChoice"] = bedrock_choice
    return config


def _tool(tool: Any, index: int) -> Block:
    function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise InvalidRequest(f"tools[{index}] must be a function tool with a name.", param=f"tools[{index}]")
    spec: Block = {"name": function["name"]}
    if function.get("description"):
        spec["description"] = function["description"]
    spec["inputSchema"] = {"json": function.get("parameters") or {"type": "object", "properties": {}}}
    return {"toolSpec": spec}


def _tool_choice(choice: Any) -> Block | None:
    if choice is None or choice == "none":
        return None
    if choice == "auto":
        return {"auto": {}}
    if choice == "required":
        return {"any": {}}
    function = choice.get("function") if isinstance(choice, dict) else None
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        return {"tool": {"name": function["name"]}}
    raise InvalidRequest("tool_choice must be 'auto', 'required', 'none' or a named function.", param="tool_choice")
