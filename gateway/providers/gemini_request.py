"""Translate an OpenAI chat-completions request into a Gemini ``generateContent`` request body.

Gemini rejects fields it does not know, so the body is built from an allow-list: every OpenAI
field is either translated, or dropped on purpose (logprobs, logit_bias, user, stream_options,
parallel_tool_calls: hints whose absence a client cannot rely on noticing). n>1 is refused, as
a client would otherwise silently get fewer choices than it asked for.
"""

from __future__ import annotations

import mimetypes
from typing import Any

from gateway.errors import InvalidRequest
from gateway.providers.openai_chat import (
    assistant_text,
    bad_image,
    data_url,
    image_url,
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

Part = dict[str, Any]
Content = dict[str, Any]


def translate_request(payload: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The Gemini body for an OpenAI ``payload``; ``params`` are the route's defaults."""
    merged = merged_request(payload, params)
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
    limit = max_tokens(payload, params, None)
    if limit is not None:
        config["maxOutputTokens"] = limit
    stop = stop_sequences(merged.get("stop"))
    if stop:
        config["stopSequences"] = stop
    config.update(_response_format(merged.get("response_format")))
    return config


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
    call_names: dict[str, str] = {}  # tool_call_id -> function name, from the assistant turns so far
    return walk_messages(
        raw,
        user=_user_parts,
        assistant=lambda message, index: _assistant_parts(message, index, call_names),
        tool=lambda message, index: _function_response(message, index, call_names),
        assistant_role="model",
        key="parts",
    )


def _text_part(text: Any) -> list[Part]:
    # An empty text part is refused by Gemini and adds nothing anyway.
    return [{"text": text}] if isinstance(text, str) and text else []


def _user_parts(content: Any, index: int) -> list[Part]:
    return user_items(content, index, _text_part, {"image_url": _image_part, "input_audio": _audio_part})


def _image_part(image: Any, index: int) -> Part:
    url = image_url(image)
    parsed = data_url(url)
    if parsed is not None:
        mime_type, encoding, data = parsed
        if encoding == "base64" and mime_type and data:
            return {"inlineData": {"mimeType": mime_type, "data": data}}
    elif isinstance(url, str) and url.startswith(("https://", "http://")):
        guessed, _ = mimetypes.guess_type(url.split("?", 1)[0])
        file_data = {"mimeType": guessed, "fileUri": url} if guessed else {"fileUri": url}
        return {"fileData": file_data}
    raise bad_image(index)


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
    parts = assistant_text(message.get("content"), index, _text_part)
    for call in message.get("tool_calls") or []:
        parts.append(_function_call(call, index, call_names))
    return parts


def _function_call(call: Any, index: int, call_names: dict[str, str]) -> Part:
    name, decoded = tool_call_function(call, index)
    if isinstance(call.get("id"), str):
        call_names[call["id"]] = name
    part: Part = {"functionCall": {"name": name, "args": decoded}}
    extra = call.get("extra_content")
    google = extra.get("google") if isinstance(extra, dict) else None
    signature = google.get("thought_signature") if isinstance(google, dict) else None
    if isinstance(signature, str) and signature:
        part["thoughtSignature"] = signature  # a thinking model checks it came back with its call
    return part


def _function_response(message: dict[str, Any], index: int, call_names: dict[str, str]) -> Part:
    """Gemini matches a result to its call by function name, which OpenAI's tool message lacks."""
    call_id = tool_call_id(message, index)
    name = call_names.get(call_id)
    if name is None:
        raise InvalidRequest(
            f"messages[{index}].tool_call_id '{call_id}' matches no earlier assistant tool call.",
            param=f"messages[{index}].tool_call_id",
        )
    content = text_only(message.get("content"), index)
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
    function = tool_function(tool, index)
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
    return {"mode": "ANY", "allowedFunctionNames": [named_function(choice)]}
