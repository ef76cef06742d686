"""Translate Anthropic Messages API traffic to and from the gateway's OpenAI chat schema.

Clients of ``POST /v1/messages`` speak Anthropic; every backend adapter speaks OpenAI chat. The
request is validated as Anthropic would (a malformed one fails here, naming the field the way
Anthropic does, ``messages.0.content``) and rebuilt as an OpenAI chat request; the answer comes back
as an Anthropic ``message``. Pure functions: no HTTP, no I/O. Streams are in
``anthropic_messages_stream``.

Dropped on purpose, having no OpenAI chat counterpart: ``top_k``, ``thinking``, ``cache_control``
marks, ``service_tier``, ``container``, ``mcp_servers`` and assistant ``thinking`` blocks (a
client resends them; no backend behind an OpenAI request can check their signatures).
"""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.errors import InvalidRequest, UpstreamError
from gateway.ingress.anthropic_messages_stream import (
    AnthropicEventStream,
    anthropic_usage,
    message_id,
    stop_reason,
    tool_use_id,
)
from gateway.wire.anthropic_errors import anthropic_error_body
from gateway.wire.usage import Usage

__all__ = [
    "AnthropicEventStream",
    "anthropic_error_body",
    "count_tokens_body",
    "count_tokens_request",
    "to_anthropic_message",
    "to_openai_request",
]

_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()
_PASSED = ("temperature", "top_p")
_TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}
_SKIPPED_ASSISTANT_BLOCKS = frozenset({"thinking", "redacted_thinking"})

Json = dict[str, Any]


# --- requests ---------------------------------------------------------------------------------


def to_openai_request(body: Json) -> Json:
    """The OpenAI chat request for an Anthropic Messages request ``body``."""
    request = count_tokens_request(body)
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
        problem = "Field required" if max_tokens is None else "Input should be a valid integer"
        raise InvalidRequest(f"max_tokens: {problem}", param="max_tokens")
    if max_tokens < 1:
        raise InvalidRequest("max_tokens: Input should be greater than or equal to 1", param="max_tokens")
    request["max_tokens"] = max_tokens
    request.update({name: body[name] for name in _PASSED if body.get(name) is not None})
    stop = body.get("stop_sequences")
    if stop is not None:
        if not isinstance(stop, list) or not all(isinstance(item, str) for item in stop):
            raise InvalidRequest("stop_sequences: Input should be a list of strings", param="stop_sequences")
        if stop:
            request["stop"] = stop
    if body.get("stream") is True:
        # The ingress needs the final usage chunk to fill message_delta's output_tokens.
        request["stream"] = True
        request["stream_options"] = {"include_usage": True}
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        request["user"] = metadata["user_id"]
    return request


def count_tokens_request(body: Json) -> Json:
    """The OpenAI request whose prompt ``POST /v1/messages/count_tokens`` counts (no max_tokens needed)."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest(
            "model: Field required" if model is None else "model: Input should be a string", param="model"
        )
    request: Json = {"model": model, "messages": _system(body.get("system")) + _messages(body.get("messages"))}
    _add_tools(request, body)
    return request


def count_tokens_body(input_tokens: int) -> Json:
    return {"input_tokens": input_tokens}


def _system(system: Any) -> list[Json]:
    if system is None or system == "":
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}]
    if not isinstance(system, list):
        raise InvalidRequest("system: Input should be a valid string or a list of text blocks", param="system")
    texts = [_text(block, f"system.{index}") for index, block in enumerate(system)]
    text = "\n\n".join(text for text in texts if text)
    return [{"role": "system", "content": text}] if text else []


def _messages(raw: Any) -> list[Json]:
    if not isinstance(raw, list) or not raw:
        problem = "Field required" if raw is None else "at least one message is required"
        raise InvalidRequest(f"messages: {problem}", param="messages")
    out: list[Json] = []
    for index, message in enumerate(raw):
        path = f"messages.{index}"
        if not isinstance(message, dict):
            raise InvalidRequest(f"{path}: Input should be a valid dictionary", param=path)
        role, content = message.get("role"), message.get("content")
        if role not in ("user", "assistant"):
            raise InvalidRequest(f"{path}.role: Input should be 'user' or 'assistant'", param=f"{path}.role")
        if isinstance(content, str):
            out.append({"role": role, "content": content})
        elif isinstance(content, list):
            out.extend(_user(content, path) if role == "user" else _assistant(content, path))
        else:
            problem = "Field required" if content is None else "Input should be a valid string or list of blocks"
            raise InvalidRequest(f"{path}.content: {problem}", param=f"{path}.content")
    return out


def _user(content: list[Any], path: str) -> list[Json]:
    """Tool results become ``tool`` messages, placed ahead of the user's own remaining content."""
    tool_messages: list[Json] = []
    parts: list[Json] = []
    for index, block in enumerate(content):
        where = f"{path}.content.{index}"
        kind = _block_type(block, where)
        if kind == "text":
            parts.append({"type": "text", "text": _text(block, where)})
        elif kind == "image":
            parts.append(_image(block, where))
        elif kind == "tool_result":
            message, images = _tool_result(block, where)
            tool_messages.append(message)
            parts.extend(images)  # a tool message holds text only; its images travel with the user turn
        else:
            raise _unsupported(kind, where)
    return tool_messages + ([{"role": "user", "content": parts}] if parts else [])


def _assistant(content: list[Any], path: str) -> list[Json]:
    texts: list[str] = []
    calls: list[Json] = []
    for index, block in enumerate(content):
        where = f"{path}.content.{index}"
        kind = _block_type(block, where)
        if kind == "text":
            texts.append(_text(block, where))
        elif kind == "tool_use":
            calls.append(_tool_call(block, where))
        elif kind not in _SKIPPED_ASSISTANT_BLOCKS:
            raise _unsupported(kind, where)
    if not texts and not calls:
        return []
    message: Json = {"role": "assistant", "content": "\n\n".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    return [message]


def _block_type(block: Any, where: str) -> str:
    kind = block.get("type") if isinstance(block, dict) else None
    if not isinstance(kind, str):
        raise InvalidRequest(f"{where}.type: Field required", param=f"{where}.type")
    return kind


def _text(block: Any, where: str) -> str:
    if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(block.get("text"), str):
        raise InvalidRequest(f"{where}: Input should be a text block with a string 'text'", param=where)
    text: str = block["text"]
    return text


def _image(block: Json, where: str) -> Json:
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64" and isinstance(source, dict):
        media_type, data = source.get("media_type"), source.get("data")
        if isinstance(media_type, str) and media_type and isinstance(data, str) and data:
            return {"type": "image_url", "image_url": {"url": f"data:{media_type};base64,{data}"}}
    elif kind == "url" and isinstance(source, dict) and isinstance(source.get("url"), str):
        return {"type": "image_url", "image_url": {"url": source["url"]}}
    raise InvalidRequest(
        f"{where}.source: an image source must be base64 (with media_type and data) or a url", param=f"{where}.source"
    )


def _tool_call(block: Json, where: str) -> Json:
    call_id, name, arguments = block.get("id"), block.get("name"), block.get("input", {})
    if not isinstance(call_id, str) or not isinstance(name, str) or not isinstance(arguments, dict):
        raise InvalidRequest(f"{where}: a tool_use block needs a string id and name and an object input", param=where)
    function = {"name": name, "arguments": _encoder.encode(arguments).decode()}
    return {"id": call_id, "type": "function", "function": function}


def _tool_result(block: Json, where: str) -> tuple[Json, list[Json]]:
    call_id, content = block.get("tool_use_id"), block.get("content")
    if not isinstance(call_id, str):
        raise InvalidRequest(f"{where}.tool_use_id: Field required", param=f"{where}.tool_use_id")
    texts: list[str] = []
    images: list[Json] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for index, part in enumerate(content):
            inner = f"{where}.content.{index}"
            kind = _block_type(part, inner)
            if kind == "image":
                images.append(_image(part, inner))
            elif kind == "text":
                texts.append(_text(part, inner))
            else:
                raise _unsupported(kind, inner)
    elif content is not None:
        raise InvalidRequest(f"{where}.content: Input should be a string or a list of blocks", param=f"{where}.content")
    text = "\n".join(texts)
    if images:
        text += f"{chr(10) if text else ''}[{len(images)} image(s) attached to the next user message]"
    if block.get("is_error") is True:
        text = f"Error: {text}" if text else "Error"
    return {"role": "tool", "tool_call_id": call_id, "content": text}, images


def _add_tools(request: Json, body: Json) -> None:
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise InvalidRequest("tools: Input should be a valid list", param="tools")
        if tools:
            request["tools"] = [_tool(tool, f"tools.{index}") for index, tool in enumerate(tools)]
    choice = body.get("tool_choice")
    if choice is None:
        return
    kind = choice.get("type") if isinstance(choice, dict) else None
    if isinstance(kind, str) and kind in _TOOL_CHOICES:  # a client's {} or [] is no key of the table
        request["tool_choice"] = _TOOL_CHOICES[str(kind)]
    elif kind == "tool" and isinstance(choice, dict) and isinstance(choice.get("name"), str):
        request["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        raise InvalidRequest(
            "tool_choice: type must be 'auto', 'any', 'none' or 'tool' with a name", param="tool_choice"
        )
    if isinstance(choice, dict) and choice.get("disable_parallel_tool_use") is True:
        request["parallel_tool_calls"] = False


def _tool(tool: Any, where: str) -> Json:
    if not isinstance(tool, dict):
        raise InvalidRequest(f"{where}: Input should be a valid dictionary", param=where)
    if tool.get("type", "custom") not in ("custom", None):
        raise InvalidRequest(
            f"{where}: server tools ('{tool.get('type')}') are not supported by this gateway", param=where
        )
    name, schema = tool.get("name"), tool.get("input_schema")
    if not isinstance(name, str) or not name:
        raise InvalidRequest(f"{where}.name: Field required", param=f"{where}.name")
    if not isinstance(schema, dict):
        raise InvalidRequest(f"{where}.input_schema: Field required", param=f"{where}.input_schema")
    function: Json = {"name": name}
    if isinstance(tool.get("description"), str):
        function["description"] = tool["description"]
    function["parameters"] = schema
    return {"type": "function", "function": function}


def _unsupported(kind: str, where: str) -> InvalidRequest:
    return InvalidRequest(
        f"{where}.type: content blocks of type '{kind}' are not supported here", param=f"{where}.type"
    )


# --- responses --------------------------------------------------------------------------------


def to_anthropic_message(openai_response: Json, requested_model: str) -> Json:
    """The Anthropic ``message`` for an OpenAI ``chat.completion``; ``model`` is what the client asked for."""
    choices = openai_response.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else None
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(choice, dict) or not isinstance(message, dict):
        raise UpstreamError("The backend returned a chat completion without a message.")
    content = _content_blocks(message)
    has_tool_calls = any(block["type"] == "tool_use" for block in content)
    return {
        "id": message_id(openai_response.get("id")),
        "type": "message",
        "role": "assistant",
        "model": requested_model,
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason"), has_tool_calls),
        "stop_sequence": None,
        "usage": anthropic_usage(Usage.from_openai(openai_response.get("usage")) or Usage()),
    }


def _content_blocks(message: Json) -> list[Json]:
    text = _message_text(message.get("content"))
    if not text and isinstance(message.get("refusal"), str):
        text = message["refusal"]
    blocks: list[Json] = [{"type": "text", "text": text}] if text else []
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(call, dict) and isinstance(function, dict):
            name = function.get("name")
            blocks.append(
                {
                    "type": "tool_use",
                    "id": tool_use_id(call.get("id")),
                    "name": name if isinstance(name, str) else "",
                    "input": _arguments(function.get("arguments")),
                }
            )
    return blocks


def _message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # some backends answer with text parts
        return "".join(str(part.get("text") or "") for part in content if isinstance(part, dict))
    return ""


def _arguments(arguments: Any) -> Json:
    try:
        decoded = _decoder.decode(arguments) if isinstance(arguments, str) and arguments else {}
    except (msgspec.DecodeError, RecursionError):
        return {}
    return decoded if isinstance(decoded, dict) else {}
