"""An ASGI response that relays a backend's event stream (or audio, or a transcript) and records its usage exactly once.

It owns the request's account from the moment the backend said 200: whatever ends the stream
(the backend finishing, the backend breaking, the client going away) closes the upstream
response and records what was used. When the client disconnects, the upstream request is
cancelled at once instead of running on to the end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import httpx
import msgspec
from litestar.types import Receive, Scope, Send

from gateway.ledger.tokens import estimate_stream_usage
from gateway.providers.base import StreamTap
from gateway.proxy.exchange import Exchange

log = logging.getLogger(__name__)
CLIENT_CLOSED = 499
_HEADERS = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # tell nginx-style proxies in front of us not to buffer
)


class StreamRelay:
    def __init__(
        self,
        exchange: Exchange,
        upstream: httpx.Response,
        tap: StreamTap,
        payload: dict[str, Any],
        record: Callable[[Exchange], None],
        *,
        media_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._exchange = exchange
        self._upstream = upstream
        self._tap = tap
        self._payload = payload
        self._record = record
        own = _HEADERS if media_type is None else ((b"content-type", media_type.encode("latin-1")), *_HEADERS[1:])
        extra = tuple((name.encode("latin-1"), value.encode("latin-1")) for name, value in (headers or {}).items())
        self._headers = own + extra
        self._watch_after: asyncio.Event | None = None

    def watch_after(self, event: asyncio.Event) -> None:
        """Watch for the client leaving only once ``event`` is set (its request body still streaming)."""
        self._watch_after = event

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tasks: list[asyncio.Future[None]] = []
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self._headers})
            pump = asyncio.ensure_future(self._pump(send))
            tasks = [pump, asyncio.ensure_future(_wait_for_disconnect(receive, self._watch_after))]
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if pump not in done:
                self._exchange.status = CLIENT_CLOSED
                self._exchange.error_type = "client_disconnected"
            elif (error := pump.exception()) is not None:
                log.error("stream relay failed", exc_info=error)
                self._exchange.status, self._exchange.error_type = 500, "internal"
        except asyncio.CancelledError:  # the server is shutting down under us
            self._exchange.status, self._exchange.error_type = CLIENT_CLOSED, "cancelled"
            raise
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._upstream.aclose()
            await self._settle()

    async def _pump(self, send: Send) -> None:
        exchange = self._exchange
        name = exchange.route.backend.name if exchange.route else "backend"
        try:
            async for data in self._upstream.aiter_bytes():
                out = self._tap.feed(data)
                if out:
                    exchange.mark_first_byte()
                    await send({"type": "http.response.body", "body": out, "more_body": True})
            tail = self._tap.close()
            if not self._tap.finished:
                # Ended cleanly but without [DONE]: the client may not notice, the ledger should.
                exchange.status, exchange.error_type = 502, "incomplete_stream"
        except httpx.TimeoutException:
            # Headers are gone already: report in-band, as OpenAI does.
            exchange.status, exchange.error_type = 504, "UpstreamTimeout"
            tail = self._tap.error(
                _error_event(f"Backend '{name}' sent nothing more within its timeout.", "upstream_timeout")
            )
        except httpx.HTTPError as exc:
            exchange.status, exchange.error_type = 502, "UpstreamError"
            tail = self._tap.error(
                _error_event(f"Backend '{name}' broke off the stream: {type(exc).__name__}.", "upstream_error")
            )
        await send({"type": "http.response.body", "body": tail, "more_body": False})

    async def _settle(self) -> None:
        exchange = self._exchange
        try:
            if getattr(self._tap, "usage_in_thread", False):  # a relayed reply metered by tokenizing
                exchange.usage = await asyncio.to_thread(lambda: self._tap.usage)
            else:
                exchange.usage = self._tap.usage
            if exchange.usage is None:
                # The backend never reported usage (cut short): count what was sent, off the loop.
                forwarded = bytes(self._tap.forwarded)
                exchange.usage = await asyncio.to_thread(estimate_stream_usage, self._payload, forwarded)
        finally:
            self._record(exchange)  # recorded even if shutdown cancels the count


async def _wait_for_disconnect(receive: Receive, after: asyncio.Event | None = None) -> None:
    if after is not None:
        await after.wait()
    while (await receive())["type"] != "http.disconnect":
        pass


def _error_event(message: str, code: str) -> bytes:
    error = {"error": {"message": message, "type": "api_error", "param": None, "code": code}}
    return b"data: " + msgspec.json.encode(error) + b"\n\n"
