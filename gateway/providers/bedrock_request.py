"""Translate an OpenAI request into a Bedrock Runtime request body (Converse, or Titan embeddings).

Converse rejects fields it does not know, so the body is built from an allow-list: every OpenAI
field is either translated or dropped on purpose. The model is named in the URL, not the body.
"""

from __future__ import annotations

from typing import Any

from gateway.errors import InvalidRequest
from gateway.providers.openai_chat import (
    assistant_text,
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

Block = dict[str, Any]
Message = dict[str, Any]


def translate_request(payload: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The Converse body for an OpenAI chat ``payload``; ``params`` are the route's defaults."""
    merged = merged_request(payload, params)
    system, messages = _translate_messages(merged.get("messages") or [])
    instruction = _format_instruction(merged.get("response_format"))
    if instruction:
        system.append(instruction)
    body: dict[str, Any] = {"messages": messages}
    if system:
        body["system"] = [{"text": text} for text in system]
    config: dict[str, Any] = {"maxTokens": max_tokens(payload, params, DEFAULT_MAX_TOKENS)}
    if merged.get("temperature") is not None:
        config["temperature"] = merged["temperature"]
    if merged.get("top_p") is not None:
        config["topP"] = merged["top_p"]
    stop = stop_sequences(merged.get("stop"))
    if stop:
        config["stopSequences"] = stop
    body["inferenceConfig"] = config
    tool_config = _tool_config(merged, messages)
    if tool_config is not None:
        body["toolConfig"] = tool_config
    return body


def _format_instruction(response_format: Any) -> str | None:
    """A system instruction standing in for ``response_format``: Converse has no JSON mode."""
    return json_instruction(response_format, _JSON_ONLY, "The object must match this JSON schema:")


def _translate_messages(raw: list[Any]) -> tuple[list[str], list[Message]]:
    system, messages = walk_messages(raw, user=_user_blocks, assistant=_assistant_blocks, tool=_tool_result)
    for message in messages:
        if message["role"] == "user":
            # Tool results answer the turn before: they go ahead of any text sent along with them.
            message["content"].sort(key=lambda block: "toolResult" not in block)
    return system, messages


def _text_block(text: Any) -> list[Block]:
    # Converse refuses blank text blocks; an empty string adds nothing anyway.
    return [{"text": text}] if isinstance(text, str) and text.strip() else []


def _user_blocks(content: Any, index: int) -> list[Block]:
    return user_items(content, index, _text_block, {"image_url": _image_block})


def _image_block(image: Any, index: int) -> Block:
    parsed = data_url(image_url(image))
    param = f"messages[{index}].content"
    if parsed is None:
        raise InvalidRequest(
            f"messages[{index}]: this model's backend (Amazon Bedrock) takes images only as base64 data: URLs, "
            "not links it would have to fetch.",
            param=param,
        )
    media_type, encoding, data = parsed
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
    blocks = assistant_text(message.get("content"), index, _text_block)
    for call in message.get("tool_calls") or []:
        blocks.append(_tool_use(call, index))
    return blocks


def _tool_use(call: Any, index: int) -> Block:
    name, decoded = tool_call_function(call, index, require_id=True)
    return {"toolUse": {"toolUseId": call["id"], "name": name, "input": decoded}}


def _tool_result(message: dict[str, Any], index: int) -> Block:
    call_id = tool_call_id(message, index, allow_empty=False)
    text = text_only(message.get("content"), index)
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
    function = tool_function(tool, index)
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
    return {"tool": {"name": named_function(choice)}}
