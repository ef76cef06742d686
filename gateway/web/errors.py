"""The one place domain errors become HTTP responses, in OpenAI's error shape
``{"error": {"message", "type", "param", "code"}}``, except under ``/v1/messages``, where
Anthropic-SDK clients get Anthropic's ``{"type": "error", "error": {"type", "message"}}``."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec
from litestar import Request
from litestar.exceptions import HTTPException, ValidationException
from litestar.response import Response
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from gateway import errors as e
from gateway.wire.anthropic_errors import anthropic_error_body

log = logging.getLogger(__name__)
_encoder = msgspec.json.Encoder()

# (status, OpenAI error type); the most specific class listed first wins.
_MAPPING: tuple[tuple[type[e.GatewayError], int, str], ...] = (
    (e.ClientDisconnected, 499, "invalid_request_error"),  # nginx's "client closed request"
    (e.UpstreamTimeout, 504, "api_error"),
    (e.UpstreamError, 502, "api_error"),
    (e.ServiceUnavailable, 503, "api_error"),
    (e.Overloaded, 503, "api_error"),
    (e.RequestTimeout, 408, "invalid_request_error"),
    (e.InvalidRequest, 400, "invalid_request_error"),
    (e.UnsupportedEndpoint, 400, "invalid_request_error"),
    (e.RequestTooLarge, 413, "invalid_request_error"),
    (e.AuthenticationFailed, 401, "invalid_request_error"),
    (e.AdminAuthenticationFailed, 401, "invalid_request_error"),
    (e.PermissionDenied, 403, "invalid_request_error"),
    (e.NotFound, 404, "invalid_request_error"),
    (e.MethodNotAllowed, 405, "invalid_request_error"),
    (e.Conflict, 409, "invalid_request_error"),
)
_LITESTAR_TYPES = {400: "invalid_request_error", 404: "invalid_request_error", 405: "invalid_request_error"}
# msgspec's wording for an object's missing and unknown fields, and Litestar's for a missing parameter.
_MISSING_FIELD = re.compile(r"Object missing required field `(.+)`")
_UNKNOWN_FIELD = re.compile(r"Object contains unknown field `(.+)`")
_MISSING_PARAMETER = re.compile(r"Missing required \w+ parameter '(.+)' for path")
_ANTHROPIC_PREFIX = "/v1/messages"
_Exc = TypeVar("_Exc", bound=Exception)
Handler = Callable[[Request[Any, Any, Any], _Exc], Response[bytes]]


def speaks_anthropic(path: str) -> bool:
    """Whether a request path is the Anthropic Messages API's (``/v1/messages`` and below)."""
    return path == _ANTHROPIC_PREFIX or path.startswith(_ANTHROPIC_PREFIX + "/")


def _in_the_clients_shape(handler: Handler[_Exc]) -> Handler[_Exc]:
    """An exception handler whose OpenAI-shaped error becomes Anthropic's under ``/v1/messages``:
    Anthropic's SDK reads only its own shape, for unknown paths and wrong methods there too."""

    @functools.wraps(handler)
    def handle(request: Request[Any, Any, Any], exc: _Exc) -> Response[bytes]:
        response = handler(request, exc)
        if not speaks_anthropic(request.scope["path"]):
            return response
        status = response.status_code or 500  # always set by ``error_response``
        error = msgspec.json.decode(response.content)["error"]  # our own body, just made
        return Response(
            _encoder.encode(anthropic_error_body(status, error["message"])),
            status_code=status,
            media_type="application/json",
            headers=dict(response.headers),
        )

    return handle


def status_and_type(exc: e.GatewayError) -> tuple[int, str]:
    if isinstance(exc, e.UpstreamRejected):
        return exc.status, exc.type or "invalid_request_error"
    if isinstance(exc, e.RateLimited):
        return 429, exc.kind
    if isinstance(exc, e.QuotaExceeded):
        return 429, "insufficient_quota"
    for cls, status, type_ in _MAPPING:
        if isinstance(exc, cls):
            return status, type_
    return 500, "server_error"


def error_response(
    status: int,
    message: str,
    type_: str,
    *,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response[bytes]:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return Response(_encoder.encode(body), status_code=status, media_type="application/json", headers=headers)


def openai_error_body(exc: e.GatewayError) -> dict[str, Any]:
    """The error document of a domain error, for an answer made outside Litestar."""
    _, type_ = status_and_type(exc)
    return {"error": {"message": exc.message, "type": type_, "param": exc.param, "code": exc.code}}


def gateway_error_response(exc: e.GatewayError) -> Response[bytes]:
    status, type_ = status_and_type(exc)
    headers = dict(exc.headers or {})
    if exc.retry_after:
        headers["retry-after"] = exc.retry_after
    return error_response(status, exc.message, type_, param=exc.param, code=exc.code, headers=headers or None)


@_in_the_clients_shape
def handle_gateway_error(_request: Request[Any, Any, Any], exc: e.GatewayError) -> Response[bytes]:
    return gateway_error_response(exc)


@_in_the_clients_shape
def handle_http_exception(_request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    """Litestar's own errors: unknown route, wrong method, body over the limit, bad parameters."""
    status = exc.status_code
    if status == 413:
        return error_response(
            413,
            "The request body is larger than this gateway accepts.",
            "invalid_request_error",
            code="request_too_large",
        )
    if isinstance(exc, ValidationException):
        message, param = _validation_message(exc)
        return error_response(400, message, "invalid_request_error", param=param, headers=exc.headers)
    message = exc.detail or "Request failed."
    if status == 404:
        message = "Unknown path. The OpenAI-compatible API is under /v1 (see /schema)."
    type_ = _LITESTAR_TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
    return error_response(status, message, type_, code=_code_for(status), headers=exc.headers)


def _validation_message(exc: ValidationException) -> tuple[str, str | None]:
    """A body or query parameter that failed validation, named in the message and in ``param``."""
    problems = exc.extra if isinstance(exc.extra, list) else []
    if not problems or not isinstance(problems[0], dict):
        missing = _MISSING_PARAMETER.search(exc.detail)
        if missing:
            return f"Missing required parameter: '{missing.group(1)}'.", missing.group(1)
        return exc.detail or "Invalid request.", None
    problem: str = str(problems[0].get("message", "invalid"))
    # Litestar names the body itself "data", and a nested object by its path.
    where = str(problems[0].get("key", ""))
    where = "" if where == "data" else where.removeprefix("data.")
    if found := _MISSING_FIELD.fullmatch(problem):
        param = _join(where, found.group(1))
        return f"Missing required parameter: '{param}'.", param
    if found := _UNKNOWN_FIELD.fullmatch(problem):
        param = _join(where, found.group(1))
        return f"Unrecognized request argument supplied: '{param}'.", param
    if not where:
        return f"Invalid request body: {problem}.", None
    return f"Invalid value for '{where}': {problem}.", where


def _join(where: str, field: str) -> str:
    return f"{where}.{field}" if where else field


@_in_the_clients_shape
def handle_database_error(_request: Request[Any, Any, Any], exc: SQLAlchemyError) -> Response[bytes]:
    """The control plane's database failing under an admin or key request: 503 when it is down."""
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout):
        log.warning("database unavailable: %s", type(exc).__name__)
        return error_response(
            503, "The database is unavailable; try again shortly.", "api_error", code="service_unavailable"
        )
    return _unexpected(exc)


@_in_the_clients_shape
def handle_unexpected(_request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    return _unexpected(exc)


def _unexpected(exc: Exception) -> Response[bytes]:
    if isinstance(exc, OSError):
        # A connection the driver opens itself (asyncpg refused or reset) arrives unwrapped by SQLAlchemy.
        log.warning("database unavailable: %s", type(exc).__name__)
        return error_response(
            503, "The database is unavailable; try again shortly.", "api_error", code="service_unavailable"
        )
    log.exception("unexpected error", exc_info=exc)
    return error_response(500, "The gateway failed unexpectedly; the error was logged.", "server_error")


def _code_for(status: int) -> str | None:
    return {404: "not_found", 405: "method_not_allowed"}.get(status)
