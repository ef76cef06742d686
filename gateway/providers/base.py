"""What every backend adapter provides. One adapter per pair of wire schemas (OpenAI in, X out)."""

from __future__ import annotations

from collections.abc import AsyncIterable
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.catalog.registry import ModelRoute
from gateway.errors import GatewayError
from gateway.wire.endpoints import Endpoint
from gateway.wire.multipart import FormStream
from gateway.wire.usage import Usage


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    url: str
    headers: dict[str, str]
    body: bytes | AsyncIterable[bytes]
    """An upload streams through as it arrives; everything else is sent whole."""


class StreamTap(Protocol):
    """Reads a backend's stream as it passes and says what to forward to the client."""

    @property
    def usage(self) -> Usage | None: ...

    @property
    def finished(self) -> bool:
        """The stream's own end marker (OpenAI's ``[DONE]``) went by."""
        ...

    @property
    def forwarded(self) -> bytearray:
        """The OpenAI-format bytes sent to the client so far: counted when no usage ever came."""
        ...

    def feed(self, data: bytes) -> bytes: ...

    def close(self) -> bytes: ...

    def error(self, event: bytes) -> bytes:
        """The bytes to send for an OpenAI-format error event the gateway itself makes mid-stream."""
        ...


class Adapter(Protocol):
    def request(self, endpoint: Endpoint, payload: dict[str, Any], route: ModelRoute) -> UpstreamRequest: ...

    def response(self, endpoint: Endpoint, body: bytes) -> tuple[bytes, Usage | None]: ...

    def stream(self, endpoint: Endpoint, payload: dict[str, Any], media_type: str = "") -> StreamTap:
        """The tap for a streamed reply (``media_type``: the backend's content type)."""
        ...

    def upload(self, endpoint: Endpoint, form: FormStream, route: ModelRoute) -> UpstreamRequest:
        """A multipart upload (audio), streamed to the backend; raises UnsupportedEndpoint."""
        ...

    def error(
        self, route: ModelRoute, status: int, body: bytes, retry_after: str | None, url: str = ""
    ) -> GatewayError:
        """The domain error for a backend's non-2xx answer to a request sent to ``url``."""
        ...
