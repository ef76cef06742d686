"""What the OpenAPI schema says about errors and credentials: the statuses ``gateway.web.errors``
answers with, in the shapes it writes them. Schema annotations only; nothing here runs per request."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import msgspec
import msgspec.inspect
from litestar import Request, Response
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import (
    Components,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
    SecurityRequirement,
    SecurityScheme,
)
from litestar.typing import FieldDefinition

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator

# What str.strip() removes, spelt for a JSON Schema pattern: "not blank" as the gateway checks it
# (a regex's \s differs: it leaves out U+001C to U+001F and takes in U+FEFF).
_WHITESPACE = "".join(f"\\u{code:04x}" for code in range(0x3001) if chr(code).isspace())
NOT_BLANK = f"[^{_WHITESPACE}]"
"""A pattern (unanchored, as JSON Schema's are) that a string passes when ``text.strip()`` is not empty."""
NAMED = f"^[^\\x00]*[^\\x00{_WHITESPACE}][^\\x00]*$"
"""Not blank, and no NUL anywhere."""

# When each status happens, for the schema's readers (the README's error table, shorter).
_WHEN = {
    400: "Malformed JSON, a missing or ill-typed field (`param` names it), or an endpoint the model's backend "
    "does not offer",
    401: "Missing, unknown, expired or revoked key",
    403: "The key may not use this model (or the admin API is disabled)",
    404: "Unknown model, or no such resource",
    408: "The upload stalled",
    409: "A concurrent change; retry",
    413: "The body is over the size limit",
    429: "A rate limit or budget is reached (`Retry-After` says when to retry)",
    502: "The backend is unreachable or answered with something unusable",
    503: "The gateway is at capacity, or its database (or Redis, failing closed) is down",
    504: "The backend did not answer in time",
}

PROXY_ERRORS = (400, 401, 403, 404, 413, 429, 502, 503, 504)
"""What a ``/v1`` inference request can be answered with besides success."""
UPLOAD_ERRORS = (*PROXY_ERRORS, 408)
ADMIN_ERRORS = (400, 401, 403, 404, 409, 503)


class ErrorDetail(msgspec.Struct):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(msgspec.Struct):
    """OpenAI's error shape, which every route but ``/v1/messages*`` answers errors in."""

    error: ErrorDetail


class AnthropicErrorDetail(msgspec.Struct):
    type: str
    message: str


class AnthropicErrorBody(msgspec.Struct):
    """Anthropic's error shape, on ``/v1/messages`` and ``/v1/messages/count_tokens``."""

    type: Literal["error"]
    error: AnthropicErrorDetail


def error_responses(*statuses: int, anthropic: bool = False) -> dict[int, ResponseSpec]:
    body = AnthropicErrorBody if anthropic else ErrorBody
    return {
        status: ResponseSpec(data_container=body, description=_WHEN[status], generate_examples=False)
        for status in statuses
    }


# The schemes a client may present a key with: the gateway reads either header.
USER_KEY: list[SecurityRequirement] = [{"GatewayKey": []}, {"GatewayKeyHeader": []}]
ADMIN: list[SecurityRequirement] = [{"AdminKey": []}, {"AdminKeyHeader": []}]


def security_components() -> Components:
    return Components(
        security_schemes={
            "GatewayKey": SecurityScheme(type="http", scheme="bearer", description="A key the gateway issued"),
            "GatewayKeyHeader": SecurityScheme(type="apiKey", name="x-api-key", security_scheme_in="header"),
            "AdminKey": SecurityScheme(type="http", scheme="bearer", description="GATEWAY_ADMIN_KEY"),
            "AdminKeyHeader": SecurityScheme(type="apiKey", name="x-api-key", security_scheme_in="header"),
        }
    )


def raw_body_operation(body: Callable[[], RequestBody], success: Callable[[], OpenAPIResponse]) -> type[Operation]:
    """An ``operation_class`` for a handler that reads its body raw, so Litestar cannot describe it:
    ``body`` and ``success`` do. Such a handler relays a backend, whose own 4xx (422, say) is
    passed on with its status in the route's error shape (its documented 400's)."""

    @dataclass
    class RawBodyOperation(Operation):
        def __post_init__(self) -> None:
            # Built afresh for every schema: Litestar's spec objects are mutable.
            self.request_body = body()
            responses = dict(self.responses or {})
            responses["200"] = success()
            bad_request = responses.get("400")
            if isinstance(bad_request, OpenAPIResponse):
                responses["4XX"] = OpenAPIResponse("The backend's own error, passed on", content=bad_request.content)
            self.responses = responses

    return RawBodyOperation


def constrained_body(constraint: Callable[[], Schema]) -> type[Operation]:
    """An ``operation_class`` adding a rule across fields (not both, at least one) to a typed JSON
    body's schema: the kind of rule a struct's own schema cannot state."""

    @dataclass
    class ConstrainedBody(Operation):
        def __post_init__(self) -> None:
            if isinstance(self.request_body, RequestBody):
                media = self.request_body.content["application/json"]
                if media.schema is not None:
                    media.schema = Schema(all_of=[media.schema, constraint()])

    return ConstrainedBody


@dataclass
class OptionalBody(Operation):
    """An ``operation_class`` for a route whose JSON body may be left out (every field has a
    default): Litestar marks a typed body required even when the handler defaults it to None."""

    def __post_init__(self) -> None:
        if isinstance(self.request_body, RequestBody):
            self.request_body.required = False


def answer_options(request: Request[Any, Any, Any]) -> Response[None] | None:
    """A controller's ``before_request``: OPTIONS answered with every method of the path.

    Litestar (2.25) builds a path's route again for each handler added to it and keeps the first
    build's automatic OPTIONS handler, whose ``Allow`` lists only the methods known then (``OPTIONS,
    POST`` on ``/admin/keys``, which has GET too). The app's method map is complete."""
    if request.method != "OPTIONS":
        return None
    methods: set[str] = set()
    for path in request.route_handler.paths:
        methods.update(request.app.route_handler_method_map.get(path, {}))
    return Response(None, status_code=204, headers={"Allow": ", ".join(sorted(methods))})


def present(name: str) -> Schema:
    """``name`` is given, and not null (the decoders read a null as left out)."""
    return Schema(required=[name], properties={name: Schema(schema_not=Schema(type=OpenAPIType.NULL))})


class ClosedStructs(StructSchemaPlugin):
    """Structs that refuse unknown fields say so (``additionalProperties: false``); Litestar's own
    struct plugin leaves that out, so the schema would promise extras that get a 400."""

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        if not super().is_plugin_supported_field(field_definition):
            return False
        info = msgspec.inspect.type_info(field_definition.type_)
        return isinstance(info, msgspec.inspect.StructType) and info.forbid_unknown_fields

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        schema.additional_properties = False
        return schema
