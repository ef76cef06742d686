"""The pipeline's view of a Litestar request (``proxy.pipeline.Inbound``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.exceptions import HTTPException

from gateway.errors import ClientDisconnected, InvalidRequest, RequestTooLarge

# Set in the ASGI scope by ``web.http_protocol`` when the body broke HTTP's framing.
MALFORMED_BODY = "gateway.malformed_body"
MALFORMED_MESSAGE = "The request body is not valid HTTP/1.1: a malformed chunk or framing."


class RequestClient:
    def __init__(self, request: Request[Any, Any, State]) -> None:
        self._request = request

    @property
    def headers(self) -> Mapping[str, str]:
        return self._request.headers

    async def body(self) -> bytes:
        try:
            return await self._request.body()
        except HTTPException as exc:
            raise self._read_failure(exc) from None

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._request.stream():
                if chunk:
                    yield chunk
        except HTTPException as exc:
            raise self._read_failure(exc) from None

    def _read_failure(self, exc: HTTPException) -> Exception:
        """What stopped the body being read, as a domain error (Litestar raises HTTP errors)."""
        if exc.status_code == 413:  # Litestar enforces the size limit while reading
            return RequestTooLarge("The request body is larger than this gateway accepts.")
        if exc.status_code != 500:  # 500: Litestar's "client disconnected prematurely"
            return exc
        if self._request.scope.get(MALFORMED_BODY):  # an extension key, set by web.http_protocol
            return InvalidRequest(MALFORMED_MESSAGE)
        return ClientDisconnected("The client went away while sending its request body.")

    async def disconnected(self) -> None:
        # Only called once the body is read: all that is left to receive is the disconnect.
        while (await self._request.receive())["type"] != "http.disconnect":
            pass
