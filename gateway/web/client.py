"""The pipeline's view of a Litestar request (``proxy.pipeline.Inbound``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.exceptions import HTTPException

from gateway.errors import ClientDisconnected, RequestTooLarge


class RequestClient:
    def __init__(self, request: Request[Any, Any, State]) -> None:
        self._request = request

    @property
    def headers(self) -> Mapping[str, str]:
        return self._request.headers

    async def body(self) -> bytes:
        try:
            return await self._request.body()
        except HTTPException as exc:  # Litestar enforces the size limit while reading
            if exc.status_code == 413:
                raise RequestTooLarge("The request body is larger than this gateway accepts.") from None
            raise

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._request.stream():
                if chunk:
                    yield chunk
        except HTTPException as exc:
            if exc.status_code == 413:
                raise RequestTooLarge("The request body is larger than this gateway accepts.") from None
            if exc.status_code == 500:  # Litestar's "client disconnected prematurely"
                raise ClientDisconnected("The client went away during its upload.") from None
            raise

    async def disconnected(self) -> None:
        # Only called once the body is read: all that is left to receive is the disconnect.
        while (await self._request.receive())["type"] != "http.disconnect":
            pass
