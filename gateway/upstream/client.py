"""The one pooled upstream connection pool, shared by every backend, behind httpx's transport seam.

Requests go straight to the transport (``handle_async_request``): the profile of the request path
showed httpx.AsyncClient's per-request layers (URL merging, auth and redirect flows, cookie
extraction) costing more CPU than the transport itself, and the gateway needs none of them.
Any ``httpx.AsyncBaseTransport`` plugs in, which is how tests put a fake upstream behind it.
"""

from __future__ import annotations

from collections.abc import AsyncIterable

import httpx

from gateway.settings import Settings
from gateway.upstream.aiohttp_transport import AiohttpTransport


class Upstream:
    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        limits = httpx.Limits(
            max_connections=settings.upstream_max_connections,
            max_keepalive_connections=settings.upstream_max_connections,
            keepalive_expiry=30.0,
        )
        self._transport = transport or _transport(settings.upstream_transport, limits)
        self._connect_timeout = settings.upstream_connect_timeout_seconds
        self._default_timeout = settings.upstream_timeout_seconds
        self._urls: dict[str, httpx.URL] = {}

    async def send(
        self, url: str, headers: dict[str, str], body: bytes | AsyncIterable[bytes], timeout_seconds: float | None
    ) -> httpx.Response:
        """POST and return as soon as the headers are in; the caller reads or streams the body."""
        seconds = timeout_seconds or self._default_timeout
        request = httpx.Request(
            "POST",
            self._url(url),
            headers=headers,
            content=body,
            extensions={
                "timeout": {
                    "connect": self._connect_timeout,
                    "read": seconds,
                    "write": seconds,
                    "pool": seconds,
                }
            },
        )
        return await self._transport.handle_async_request(request)

    def _url(self, url: str) -> httpx.URL:
        # Parsing a URL is a visible share of a request's CPU; backends x endpoints is a small set.
        parsed = self._urls.get(url)
        if parsed is None:
            parsed = self._urls[url] = httpx.URL(url)
        return parsed

    async def aclose(self) -> None:
        await self._transport.aclose()


def _transport(name: str, limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    if name == "aiohttp":
        return AiohttpTransport(limits)
    if name == "httpx":
        return httpx.AsyncHTTPTransport(limits=limits, trust_env=False)
    raise ValueError(f"GATEWAY_UPSTREAM_TRANSPORT: unknown transport {name!r}; use 'aiohttp' or 'httpx'")
