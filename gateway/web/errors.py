"""The one place domain errors become HTTP responses, always in OpenAI's error shape:
``{"error": {"message", "type", "param", "code"}}``."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import HTTPException
from litestar.response import Response
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from gateway import errors as e

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


def handle_gateway_error(_request: Request[Any, Any, Any], exc: e.GatewayError) -> Response[bytes]:
    return gateway_error_response(exc)


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
    message = exc.detail or "Request failed."
    if status == 404:
        message = "Unknown path. The OpenAI-compatible API is under /v1 (see /schema)."
    type_ = _LITESTAR_TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
    return error_response(status, message, type_, code=_code_for(status), headers=exc.headers)


def handle_database_error(_request: Request[Any, Any, Any], exc: SQLAlchemyError) -> Response[bytes]:
    """The control plane's database failing under an admin or key request: 503 when it is down."""
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout):
        log.warning("database unavailable: %s", type(exc).__name__)
        return error_response(
            503, "The database is unavailable; try again shortly.", "api_error", code="service_unavailable"
        )
    return handle_unexpected(_request, exc)


def handle_unexpected(_request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.exception("unexpected error", exc_info=exc)
    return error_response(500, "The gateway failed unexpectedly; the error was logged.", "server_error")


def _code_for(status: int) -> str | None:
    return {404: "not_found", 405: "method_not_allowed"}.get(status)
