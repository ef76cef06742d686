"""Translate an OpenAI chat-completions request into a Gemini ``generateContent`` request body.

Gemini rejects fields it does not know, so the body is built from an allow-list: every OpenAI
field is either translated, or dropped on purpose (logprobs, logit_bias, user, stream_options,
parallel_tool_calls: hints whose absence a client cannot rely on noticing). n>1 is refused, as
a client would otherwise silently get fewer choices than it asked for.
"""

from __future__ import annotations

import mimetypes
from typing import Any

import msgspec

from gateway.errors import InvalidRequest

JSON_MIME = "application/json"
# OpenAI name -> generationConfig name, for values passed through unchanged.
_SAMPLING = (
    ("temperature", "temperature"),
    ("top_p", "topP"),
    ("top_k", "topK"),
    ("seed", "seed"),
    ("presence_penalty", "presencePenalty"),
    ("frequency_penalty", "frequencyPenalty"),
)
_AUDIO_MIME = {"wav": "audio/wav", "mp3": "audio/mp3"}
_decoder = msgspec.json.Decoder()

Part = dict[str, Any]
Content = dict[str, Any]


def translate_request(payload: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The Gemini body for an OpenAI ``payload``; ``params`` are the route's defaults."""
    merged = {**params, **payload}
    n = merged.get("n")
    if n is not None and n != 1:
        raise InvalidRequest("This model's backend supports only n=1.", param="n")
    system, contents = _translate_messages(merged.get("messages") or [])
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": [{"text": text} for text in system]}
    _add_tools(body, merged)
    config = _generation_config(payload, params, merged)
    if config:
        body["generationConfig"] = config
    return body


def _generation_config(payload: dict[str, Any], params: dict[str, Any], merged: dict[str, Any]) -> dict[str, Any]:
    config = {gemini: merged[name] for name, gemini in _SAMPLING if merged.get(name) is not None}
    max_tokens = _max_tokens(payload, params)
    if max_tokens is not None:
        config["maxOutputTokens"] = max_tokens
    stop = merged.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    config.update(_response_format(merged.get("response_format")))
    return config


def _max_tokens(payload: dict[str, Any], params: dict[str, Any]) -> Any:
    # Client values win over route defaults, whichever of the two OpenAI names either side uses.
    for source in (payload, params):
        for name in ("max_completion_tokens", "max_tokens"):
            if source.get(name) is not None:
                return source[name]
    return None


def _response_format(response_format: Any) -> dict[str, Any]:
    if not isinstance(response_format, dict):
        return {}
    kind = response_format.get("type")
    if kind == "json_object":
        return {"responseMimeType": JSON_MIME}
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if isinstance(schema, dict):
            return {"responseMimeType": JSON_MIME, "responseSchema": schema}
        return {"responseMimeType": JSON_MIME}
    return {}  # "text" is Gemini's default


def _translate_messages(raw: list[Any]) -> tuple[list[str], list[Content]]:
    system: list[str] = []
    contents: list[Content] = []
    call_names: dict[str, str] = {}  # tool_call_id -> function name, from the assistant turns so far
    for index, message in enumerate(raw):
        role = message.get("role") if isinstance(message, dict) else None
        if role in ("system", "developer"):
            text = _text_only(message.get("content"), index)
            if text:
                system.append(text)
        elif role == "user":
            _append(contents, "user", _user_parts(message.get("content"), index))
        elif role == "assistant":
            _append(contents, "model", _assistant_parts(message, index, call_names))
        elif role == "tool":
            _append(contents, "user", [_function_response(message, index, call_names)])
        else:
            raise InvalidRequest(f"Unsupported role '{role}' in messages[{index}].", param=f"messages[{index}].role")
    return system, contents


def _append(contents: list[Content], role: str, parts: list[Part]) -> None:
    """Add a turn; a same-role neighbour absorbs it, so that roles alternate as Gemini expects."""
    if not parts:
        return
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"].extend(parts)
    else:
        contents.append({"role": role, "parts": parts})


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


def _text_part(text: Any) -> list[Part]:
    # An empty text part is refused by Gemini and adds nothing anyway.
    return [{"text": text}] if isinstance(text, str) and text else []


def _user_parts(content: Any, index: int) -> list[Part]:
    if content is None or isinstance(content, str):
        return _text_part(content)
    parts: list[Part] = []
    for part in _parts(content, index):
        kind = part.get("type")
        if kind == "text":
            parts.extend(_text_part(part.get("text")))
        elif kind == "image_url":
            parts.append(_image_part(part.get("image_url"), index))
        elif kind == "input_audio":
            parts.append(_audio_part(part.get("input_audio"), index))
        else:
            raise InvalidRequest(
                f"messages[{index}]: content parts of type '{kind}' are not supported by this model's backend.",
                param=f"messages[{index}].content",
            )
    return parts


def _image_part(image: Any, index: int) -> Part:
    url = image.get("url") if isinstance(image, dict) else image
    if isinstance(url, str) and url.startswith("data:"):
        header, _, data = url[5:].partition(",")
        mime_type, _, encoding = header.partition(";")
        if encoding == "base64" and mime_type and data:
            return {"inlineData": {"mimeType": mime_type, "data": data}}
    elif isinstance(url, str) and url.startswith(("https://", "http://")):
        guessed, _ = mimetypes.guess_type(url.split("?", 1)[0])
        file_data = {"mimeType": guessed, "fileUri": url} if guessed else {"fileUri": url}
        return {"fileData": file_data}
    raise InvalidRequest(
        f"messages[{index}]: an image_url must be an http(s) URL or a base64 data: URL.",
        param=f"messages[{index}].content",
    )


def _audio_part(audio: Any, index: int) -> Part:
    fmt = audio.get("format") if isinstance(audio, dict) else None
    data = audio.get("data") if isinstance(audio, dict) else None
    if fmt not in _AUDIO_MIME or not isinstance(data, str) or not data:
        raise InvalidRequest(
            f"messages[{index}]: input_audio needs base64 data and a format of 'wav' or 'mp3'.",
            param=f"messages[{index}].content",
        )
    return {"inlineData": {"mimeType": _AUDIO_MIME[fmt], "data": data}}


def _assistant_parts(message: dict[str, Any], index: int, call_names: dict[str, str]) -> list[Part]:
    content = message.get("content")
    if content is None or isinstance(content, str):
        parts = _text_part(content)
    else:
        # "refusal" parts are the model's own earlier refusal: nothing to resend.
        parts = [p for part in _parts(content, index) if part.get("type") == "text" for p in _text_part(part["text"])]
    for call in message.get("tool_calls") or []:
        parts.append(_function_call(call, index, call_names))
    return parts


def _function_call(call: Any, index: int, call_names: dict[str, str]) -> Part:
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
    if isinstance(call.get("id"), str):
        call_names[call["id"]] = function["name"]
    return {"functionCall": {"name": function["name"], "args": decoded}}


def _function_response(message: dict[str, Any], index: int, call_names: dict[str, str]) -> Part:
    """Gemini matches a result to its call by function name, which OpenAI's tool message lacks."""
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str):
        raise InvalidRequest(
            f"Missing required parameter: 'messages[{index}].tool_call_id'.",
            param=f"messages[{index}].tool_call_id",
            code="missing_required_parameter",
        )
    name = call_names.get(call_id)
    if name is None:
        raise InvalidRequest(
            f"messages[{index}].tool_call_id '{call_id}' matches no earlier assistant tool call.",
            param=f"messages[{index}].tool_call_id",
        )
    content = _text_only(message.get("content"), index)
    return {"functionResponse": {"name": name, "response": {"content": content}}}


def _add_tools(body: dict[str, Any], merged: dict[str, Any]) -> None:
    tools = merged.get("tools")
    if tools:
        declarations = [_declaration(tool, index) for index, tool in enumerate(tools)]
        body["tools"] = [{"functionDeclarations": declarations}]
    config = _function_calling_config(merged.get("tool_choice"))
    if config is not None:
        body["toolConfig"] = {"functionCallingConfig": config}


def _declaration(tool: Any, index: int) -> dict[str, Any]:
    function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise InvalidRequest(f"tools[{index}] must be a function tool with a name.", param=f"tools[{index}]")
    out: dict[str, Any] = {"name": function["name"]}
    if function.get("description"):
        out["description"] = function["description"]
    parameters = function.get("parameters")
    if isinstance(parameters, dict) and parameters.get("properties"):
        # A function without arguments is declared without parameters: Gemini refuses empty objects.
        out["parameters"] = parameters
    return out


def _function_calling_config(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    simple = {"auto": "AUTO", "required": "ANY", "none": "NONE"}
    if isinstance(choice, str) and choice in simple:
        return {"mode": simple[choice]}
    function = choice.get("function") if isinstance(choice, dict) else None
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        return {"mode": "ANY", "allowedFunctionNames": [function["name"]]}
    raise InvalidRequest("tool_choice must be 'auto', 'required', 'none' or a named function.", param="tool_choice")
