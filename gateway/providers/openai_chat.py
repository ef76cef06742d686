"""Read OpenAI chat-completions requests and build OpenAI chat-completion replies.

Shared by the adapters that translate to another backend's schema (Anthropic, Bedrock, Gemini):
the checks and the walking of OpenAI messages are the same whatever the backend calls things.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from gateway.errors import InvalidRequest
from gateway.wire.usage import Usage

_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()

Item = dict[str, Any]
Turn = dict[str, Any]


def merged_request(payload: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The route's ``params`` overridden by the client's ``payload``; n>1 is refused."""
    merged = {**params, **payload}
    n = merged.get("n")
    if n is not None and n != 1:
        raise InvalidRequest("This model's backend supports only n=1.", param="n")
    return merged


def max_tokens(payload: dict[str, Any], params: dict[str, Any], default: Any) -> Any:
    # Client values win over route defaults, whichever of the two OpenAI names either side uses.
    for source in (payload, params):
        for name in ("max_completion_tokens", "max_tokens"):
            if source.get(name) is not None:
                return source[name]
    return default


def stop_sequences(stop: Any) -> list[Any] | None:
    if not stop:
        return None
    return [stop] if isinstance(stop, str) else list(stop)


def json_instruction(response_format: Any, instruction: str, schema_lead: str) -> str | None:
    """A system ``instruction`` standing in for ``response_format``, for backends with no JSON mode."""
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    if kind == "json_object":
        return instruction
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if schema is None:
            return instruction
        return f"{instruction} {schema_lead} {_encoder.encode(schema).decode()}"
    return None


def walk_messages(
    raw: list[Any],
    *,
    user: Callable[[Any, int], list[Item]],
    assistant: Callable[[dict[str, Any], int], list[Item]],
    tool: Callable[[dict[str, Any], int], Item],
    assistant_role: str = "assistant",
    key: str = "content",
) -> tuple[list[str], list[Turn]]:
    """System texts and alternating turns (items under ``key``) for OpenAI ``messages``."""
    system: list[str] = []
    turns: list[Turn] = []
    for index, message in enumerate(raw):
        role = message.get("role") if isinstance(message, dict) else None
        if role in ("system", "developer"):
            text = text_only(message.get("content"), index)
            if text:
                system.append(text)
        elif role == "user":
            append_turn(turns, "user", user(message.get("content"), index), key)
        elif role == "assistant":
            append_turn(turns, assistant_role, assistant(message, index), key)
        elif role == "tool":
            append_turn(turns, "user", [tool(message, index)], key)
        else:
            raise InvalidRequest(f"Unsupported role '{role}' in messages[{index}].", param=f"messages[{index}].role")
    return system, turns


def append_turn(turns: list[Turn], role: str, items: list[Item], key: str = "content") -> None:
    """Add a turn; backends want roles to alternate, so a same-role neighbour absorbs it."""
    if not items:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1][key].extend(items)
    else:
        turns.append({"role": role, key: items})


def content_parts(content: Any, index: int) -> list[dict[str, Any]]:
    if not isinstance(content, list) or not all(isinstance(part, dict) for part in content):
        raise InvalidRequest(
            f"messages[{index}].content must be a string or an array of content parts.",
            param=f"messages[{index}].content",
        )
    return content


def text_only(content: Any, index: int) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    texts = []
    for part in content_parts(content, index):
        if part.get("type") != "text":
            raise InvalidRequest(
                f"messages[{index}]: only text parts are supported in system, developer and tool messages.",
                param=f"messages[{index}]",
            )
        texts.append(str(part.get("text") or ""))
    return "\n".join(text for text in texts if text)


def user_items(
    content: Any,
    index: int,
    text: Callable[[Any], list[Item]],
    readers: dict[str, Callable[[Any, int], Item]],
) -> list[Item]:
    """A user message's content: ``text`` turns text into items, ``readers`` the other part types."""
    if content is None or isinstance(content, str):
        return text(content)
    items: list[Item] = []
    for part in content_parts(content, index):
        kind = part.get("type")
        if kind == "text":
            items.extend(text(part.get("text")))
        elif isinstance(kind, str) and kind in readers:
            items.append(readers[kind](part.get(kind), index))
        else:
            raise InvalidRequest(
                f"messages[{index}]: content parts of type '{kind}' are not supported by this model's backend.",
                param=f"messages[{index}].content",
            )
    return items


def assistant_text(content: Any, index: int, text: Callable[[Any], list[Item]]) -> list[Item]:
    if content is None or isinstance(content, str):
        return text(content)
    items: list[Item] = []
    for part in content_parts(content, index):
        if part.get("type") == "text":
            items.extend(text(part.get("text")))
        # "refusal" parts are the model's own earlier refusal: nothing to resend.
    return items


def data_url(url: Any) -> tuple[str, str, str] | None:
    """``(media type, encoding, data)`` of a ``data:`` URL; None for anything else."""
    if not isinstance(url, str) or not url.startswith("data:"):
        return None
    header, _, data = url[5:].partition(",")
    media_type, _, encoding = header.partition(";")
    return media_type, encoding, data


def image_url(image: Any) -> Any:
    return image.get("url") if isinstance(image, dict) else image


def bad_image(index: int) -> InvalidRequest:
    return InvalidRequest(
        f"messages[{index}]: an image_url must be an http(s) URL or a base64 data: URL.",
        param=f"messages[{index}].content",
    )


def tool_call_function(call: Any, index: int, *, require_id: bool = False) -> tuple[str, dict[str, Any]]:
    """The name and decoded arguments of an assistant message's tool call."""
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise InvalidRequest(f"messages[{index}].tool_calls: each call needs a function name.", param="messages")
    if require_id and (not isinstance(call.get("id"), str) or not call["id"]):
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
    return function["name"], decoded


def tool_call_id(message: dict[str, Any], index: int, *, allow_empty: bool = True) -> str:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or (not allow_empty and not call_id):
        raise InvalidRequest(
            f"Missing required parameter: 'messages[{index}].tool_call_id'.",
            param=f"messages[{index}].tool_call_id",
            code="missing_required_parameter",
        )
    return call_id


def tool_function(tool: Any, index: int) -> dict[str, Any]:
    """The ``function`` of a function tool, checked to have a name."""
    function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise InvalidRequest(f"tools[{index}] must be a function tool with a name.", param=f"tools[{index}]")
    return function


def named_function(choice: Any) -> str:
    """The function name of a ``tool_choice`` naming one; refuses any other value."""
    function = choice.get("function") if isinstance(choice, dict) else None
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        return str(function["name"])
    raise InvalidRequest("tool_choice must be 'auto', 'required', 'none' or a named function.", param="tool_choice")


def mapped_finish_reason(table: Mapping[str, str], reason: Any) -> str:
    """A backend's stop reason as OpenAI's; unknown future reasons still end the turn ("stop")."""
    return table.get(reason, "stop") if isinstance(reason, str) else "stop"


def cached_prompt_usage(usage: Any, keys: tuple[str, str, str, str]) -> Usage | None:
    """Usage from a backend that counts cache reads and writes apart from its input tokens, as
    Anthropic and Bedrock do; OpenAI's prompt includes both. ``keys``: input, cache read, cache
    write, output."""
    if not isinstance(usage, dict):
        return None
    input_key, read_key, write_key, output_key = keys
    cached, written = count(usage.get(read_key)), count(usage.get(write_key))
    return Usage(
        prompt_tokens=count(usage.get(input_key)) + cached + written,
        completion_tokens=count(usage.get(output_key)),
        cached_tokens=cached,
        cache_write_tokens=written,
    )


def count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def openai_usage(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    }


def choice_message(texts: list[str], calls: list[dict[str, Any]]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None, "refusal": None}
    if calls:
        message["tool_calls"] = calls
    return message


def chat_completion(
    completion_id: str, model: str, message: dict[str, Any], finish: str, usage: dict[str, Any] | None
) -> bytes:
    """An encoded ``chat.completion`` with one choice; ``usage`` already in OpenAI's schema."""
    completion: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
    }
    if usage is not None:
        completion["usage"] = usage
    return _encoder.encode(completion)
