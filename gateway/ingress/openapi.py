"""The OpenAPI description of ``POST /v1/messages`` and ``/v1/messages/count_tokens``: the Anthropic
request as ``gateway.ingress.anthropic_messages`` reads it (the handlers take the raw body, so
Litestar cannot see it). Objects allow more properties: the rest passes through to an Anthropic
backend. Schema annotations only: nothing here runs per request."""

from __future__ import annotations

from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Reference, RequestBody, Schema

_STRING = OpenAPIType.STRING


def _object(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    properties: dict[str, Schema | Reference] = {**required, **(optional or {})}
    return Schema(type=OpenAPIType.OBJECT, properties=properties, required=list(required), additional_properties=True)


def _string(min_length: int | None = None) -> Schema:
    return Schema(type=_STRING, min_length=min_length)


def _const(value: str) -> Schema:
    return Schema(type=_STRING, const=value)


def _array(items: Schema) -> Schema:
    return Schema(type=OpenAPIType.ARRAY, items=items)


def _text() -> Schema:
    return _object({"type": _const("text"), "text": _string()})


def _image() -> Schema:
    base64 = _object({"type": _const("base64"), "media_type": _string(1), "data": _string(1)})
    url = _object({"type": _const("url"), "url": _string()})
    return _object({"type": _const("image"), "source": Schema(one_of=[base64, url])})


def _tool_result() -> Schema:
    content = Schema(one_of=[_string(), _array(Schema(one_of=[_text(), _image()])), Schema(type=OpenAPIType.NULL)])
    return _object({"type": _const("tool_result"), "tool_use_id": _string()}, {"content": content})


def _tool_use() -> Schema:
    arguments = Schema(type=OpenAPIType.OBJECT, additional_properties=True)
    return _object({"type": _const("tool_use"), "id": _string(), "name": _string()}, {"input": arguments})


def _thinking() -> Schema:
    return _object({"type": Schema(type=_STRING, enum=["thinking", "redacted_thinking"])})


def _message(role: str, blocks: list[Schema]) -> Schema:
    content = Schema(one_of=[_string(), _array(Schema(one_of=blocks))])
    return _object({"role": _const(role), "content": content})


def _tool() -> Schema:
    kind = Schema(type=[_STRING, OpenAPIType.NULL], enum=["custom", None])
    schema = Schema(type=OpenAPIType.OBJECT, additional_properties=True)
    return _object({"name": _string(1), "input_schema": schema}, {"type": kind, "description": _string()})


def _tool_choice() -> Schema:
    named = _object({"type": _const("tool"), "name": _string()})
    return Schema(one_of=[_object({"type": Schema(type=_STRING, enum=["auto", "any", "none"])}), named])


def _request(*, counting: bool) -> Schema:
    user = _message("user", [_text(), _image(), _tool_result()])
    assistant = _message("assistant", [_text(), _tool_use(), _thinking()])
    messages = Schema(type=OpenAPIType.ARRAY, items=Schema(one_of=[user, assistant]), min_items=1)
    required: dict[str, Schema] = {"model": _string(1), "messages": messages}
    if not counting:
        required["max_tokens"] = Schema(type=OpenAPIType.INTEGER, minimum=1)
    optional = {
        "system": Schema(one_of=[_string(), _array(_text())]),
        "tools": _array(_tool()),
        "tool_choice": _tool_choice(),
        "stop_sequences": _array(_string()),
        "stream": Schema(type=OpenAPIType.BOOLEAN),
    }
    return _object(required, optional)


def messages_body() -> RequestBody:
    return RequestBody(content={"application/json": OpenAPIMediaType(_request(counting=False))}, required=True)


def count_tokens_body() -> RequestBody:
    return RequestBody(content={"application/json": OpenAPIMediaType(_request(counting=True))}, required=True)


def message_response() -> OpenAPIResponse:
    content = {
        "application/json": OpenAPIMediaType(Schema(type=OpenAPIType.OBJECT, additional_properties=True)),
        "text/event-stream": OpenAPIMediaType(Schema(type=_STRING)),
    }
    return OpenAPIResponse("The message (Anthropic's event stream when `stream` is true)", content=content)


def count_response() -> OpenAPIResponse:
    counted = _object({"input_tokens": Schema(type=OpenAPIType.INTEGER)})
    return OpenAPIResponse("The input-token count", content={"application/json": OpenAPIMediaType(counted)})
