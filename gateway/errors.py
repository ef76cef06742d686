"""Domain errors. Code raises these; ``gateway.http.errors`` alone maps them to HTTP.

Each error carries what a client needs to act on it (a message, the offending parameter,
a machine-readable code) and nothing about HTTP.
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error the gateway reports to a client."""

    code: str | None = None
    retry_after: str | None = None
    """Seconds after which a retry may succeed (sent as ``Retry-After``); None when it would not."""
    headers: dict[str, str] | None = None
    """Further response headers the client can act on (rate-limit state)."""

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code


class ConfigError(GatewayError):
    """A settings or policy file is wrong; raised at start-up, names the file and field."""


class InvalidRequest(GatewayError):
    """The request body is malformed or a field is missing or of the wrong type."""


class RequestTooLarge(GatewayError):
    code = "request_too_large"


class RequestTimeout(GatewayError):
    """The client stopped sending its request body."""

    code = "request_timeout"


class Overloaded(GatewayError):
    """The gateway is at a capacity limit of its own; retrying shortly may succeed."""

    code = "server_busy"
    retry_after = "1"


class AuthenticationFailed(GatewayError):
    """No key, an unknown key, an expired or a revoked key."""

    code = "invalid_api_key"


class AdminAuthenticationFailed(GatewayError):
    code = "invalid_admin_key"


class PermissionDenied(GatewayError):
    """The key is valid but may not use this model."""

    code = "model_not_allowed"


class Forbidden(PermissionDenied):
    """An admin principal whose role or scope does not allow this action."""

    code = "permission_denied"


class NotFound(GatewayError):
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class MethodNotAllowed(GatewayError):
    code = "method_not_allowed"


class Conflict(GatewayError):
    code = "conflict"


class UnsupportedEndpoint(GatewayError):
    """The model's backend does not offer this endpoint."""

    code = "unsupported_endpoint"


class ServiceUnavailable(GatewayError):
    """A dependency of the gateway itself (database, Redis) is down."""

    code = "service_unavailable"
    retry_after = "1"


class RateLimited(GatewayError):
    """A per-minute or concurrency limit has no room for this request now."""

    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: str, kind: str, headers: dict[str, str]) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.kind = kind  # OpenAI's error type for rate limits: "requests" or "tokens"
        self.headers = headers


class QuotaExceeded(GatewayError):
    """A budget is spent for its period: retrying before the period ends cannot help."""

    code = "insufficient_quota"

    def __init__(self, message: str, *, headers: dict[str, str]) -> None:
        super().__init__(message)
        self.headers = {**headers, "x-should-retry": "false"}  # the OpenAI SDKs honour this


class ClientDisconnected(GatewayError):
    """The client went away before there was anything to answer; nobody reads the reply."""

    code = "client_disconnected"


class UpstreamError(GatewayError):
    """The backend could not be reached or answered with something unusable."""

    code = "upstream_error"


class UpstreamTimeout(UpstreamError):
    code = "upstream_timeout"


class UpstreamRejected(GatewayError):
    """The backend answered with an error of its own; passed on with the backend's status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str | None = None,
        param: str | None = None,
        code: str | None = None,
        retry_after: str | None = None,
    ) -> None:
        super().__init__(message, param=param, code=code)
        self.status = status
        self.type = type_
        self.retry_after = retry_after
