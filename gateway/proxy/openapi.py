"""The OpenAPI description of the ``/v1`` inference routes.

Their handlers read the raw body (the pipeline parses it once, itself), so Litestar sees no body
type to describe: this module says what the gateway checks, built from the same tables the checks
use (``Endpoint.required``, ``TYPED_FIELDS``). Every other field is the backend's to judge, so
objects allow more properties. Schema annotations only: nothing here runs per request.
"""

from __future__ import annotations

from litestar.openapi.spec import (
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    RequestBody,
    Schema,
)

from gateway.proxy.body import TYPED_FIELDS
from gateway.web.openapi import NOT_BLANK, raw_body_operation
from gateway.wire.endpoints import CHAT, MODERATIONS, SPEECH, Endpoint

_JSON_TYPES: dict[type, OpenAPIType] = {
    bool: OpenAPIType.BOOLEAN,
    dict: OpenAPIType.OBJECT,
    int: OpenAPIType.INTEGER,
    float: OpenAPIType.NUMBER,
    str: OpenAPIType.STRING,
    list: OpenAPIType.ARRAY,
}


def _typed(kinds: type | tuple[type, ...], *, nullable: bool) -> Schema:
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    types = [_JSON_TYPES[kind] for kind in kinds if not (kind is int and float in kinds)]  # numbers cover ints
    if nullable:
        types.append(OpenAPIType.NULL)  # a null field counts as left out
    return Schema(type=types[0] if len(types) == 1 else types)


def _model(endpoint: Endpoint) -> Schema:
    described = "The model, as the gateway names it (GET /v1/models)"
    if endpoint.default_model:
        return Schema(
            type=[OpenAPIType.STRING, OpenAPIType.NULL],
            pattern=NOT_BLANK,
            description=f"{described}; default {endpoint.default_model}",
        )
    return Schema(type=OpenAPIType.STRING, pattern=NOT_BLANK, description=described)


def _json_body(endpoint: Endpoint) -> Schema:
    properties: dict[str, Schema | Reference] = {"model": _model(endpoint)}
    for name, (kinds, _) in TYPED_FIELDS.items():
        properties[name] = _typed(kinds, nullable=name not in endpoint.required)
    if not endpoint.streams:
        properties["stream"] = Schema(type=[OpenAPIType.BOOLEAN, OpenAPIType.NULL], enum=[False, None])
    if "input" in endpoint.required:
        properties["input"] = _input(endpoint)
    if endpoint is CHAT:
        role = Schema(type=OpenAPIType.STRING)
        message = Schema(
            type=OpenAPIType.OBJECT, properties={"role": role}, required=["role"], additional_properties=True
        )
        properties["messages"] = Schema(type=OpenAPIType.ARRAY, items=message, min_items=1)
    if endpoint is SPEECH:
        properties["input"] = Schema(type=OpenAPIType.STRING)
    required = [name for name in ("model", *endpoint.required) if name != "model" or not endpoint.default_model]
    return Schema(type=OpenAPIType.OBJECT, properties=properties, required=required, additional_properties=True)


def _input(endpoint: Endpoint) -> Schema:
    """Not type-checked by the gateway: OpenAI's types, for the backend to judge."""
    if endpoint is MODERATIONS:
        item = Schema(type=[OpenAPIType.STRING, OpenAPIType.OBJECT])
        texts_or_parts = Schema(type=OpenAPIType.ARRAY, items=item, min_items=1)
        return Schema(one_of=[Schema(type=OpenAPIType.STRING), texts_or_parts])
    return Schema(type=[OpenAPIType.STRING, OpenAPIType.ARRAY])


def _form_body() -> Schema:
    fields: dict[str, Schema | Reference] = {
        "model": Schema(type=OpenAPIType.STRING, pattern=NOT_BLANK),
        "file": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY),
    }
    # Every part is named (Content-Disposition: form-data; name=...), so no field's name is empty.
    return Schema(
        type=OpenAPIType.OBJECT,
        properties=fields,
        required=["file", "model"],
        additional_properties=True,
        property_names=Schema(min_length=1),
    )


def _success(endpoint: Endpoint) -> OpenAPIResponse:
    content: dict[str, OpenAPIMediaType]
    if endpoint is SPEECH:
        audio = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
        content = {
            "audio/*": OpenAPIMediaType(schema=audio),
            "application/octet-stream": OpenAPIMediaType(schema=audio),
        }
        return OpenAPIResponse("The audio, streamed back as the backend makes it", content=content)
    answer = Schema(type=OpenAPIType.OBJECT, additional_properties=True)
    content = {"application/json": OpenAPIMediaType(schema=answer)}
    if endpoint.form:
        # Every response_format: json, verbose_json, text, srt, vtt, and streamed transcripts.
        content["text/*"] = OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))
    elif endpoint.streams:
        content["text/event-stream"] = OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))
    return OpenAPIResponse("The backend's answer (an event stream when `stream` is true)", content=content)


def proxy_operation(endpoint: Endpoint) -> type[Operation]:
    """The ``operation_class`` of the route handler for ``endpoint``."""

    def body() -> RequestBody:
        if endpoint.form:
            return RequestBody(content={"multipart/form-data": OpenAPIMediaType(_form_body())}, required=True)
        return RequestBody(content={"application/json": OpenAPIMediaType(_json_body(endpoint))}, required=True)

    return raw_body_operation(body, lambda: _success(endpoint))
