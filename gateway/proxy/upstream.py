"""The one pooled upstream client, shared by every backend, with a pluggable transport."""

from __future__ import annotations

import httpx

from gateway.proxy.aiohttp_transport import AiohttpTransport
from gateway.settings import Settings


def create_upstream_client(
    settings: Settings, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """``transport`` is the test seam: a fake upstream can be plugged in without patching."""
    limits = httpx.Limits(
        max_connections=settings.upstream_max_connections,
        max_keepalive_connections=settings.upstream_max_connections,
        keepalive_expiry=30.0,
    )
    if transport is None:
        transport = _transport(settings.upstream_transport, limits)
    return httpx.AsyncClient(
        transport=transport,
        limits=limits,
        timeout=httpx.Timeout(
            settings.upstream_timeout_seconds, connect=settings.upstream_connect_timeout_seconds
        ),
        follow_redirects=False,
        trust_env=False,
    )


def _transport(name: str, limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    if name == "aiohttp":
        return AiohttpTransport(limits)
    if name == "httpx":
        return httpx.AsyncHTTPTransport(limits=limits, trust_env=False)
    raise ValueError(f"GATEWAY_UPSTREAM_TRANSPORT: unknown transport {name!r}; use 'aiohttp' or 'httpx'")


def timeout_for(settings: Settings, backend_timeout: float | None) -> httpx.Timeout:
    return httpx.Timeout(
        backend_timeout or settings.upstream_timeout_seconds,
        connect=settings.upstream_connect_timeout_seconds,
    )
