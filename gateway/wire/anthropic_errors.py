"""Anthropic's error body: what the ingress sends in-band and the one error handler sends under
/v1/messages, so that Anthropic's SDKs read every error in their own shape."""

from __future__ import annotations

from typing import Any

# HTTP status -> Anthropic error type.
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


def anthropic_error_body(status: int, message: str) -> dict[str, Any]:
    """Anthropic's error body for an HTTP ``status``: unlisted 4xx are invalid requests, the rest api errors."""
    default = "invalid_request_error" if 400 <= status < 500 else "api_error"
    return {"type": "error", "error": {"type": _ERROR_TYPES.get(status, default), "message": message}}
