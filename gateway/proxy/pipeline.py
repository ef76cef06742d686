"""The request path, top to bottom: authenticate, admit, route, forward, settle, record.

No SQL here after start-up: keys come from the authenticator's cache, models from the in-memory
catalog, and the usage record goes to the batched writer. Every request that enters ``handle``
leaves exactly one usage record, whether it succeeds, fails, streams or is cut short.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine, Iterator, Mapping
from typing import Any, Protocol, TypeVar

import httpx
from litestar.response.base import ASGIResponse
from litestar.types import ASGIApp

from gateway.catalog.registry import Catalog, ModelRoute
from gateway.errors import ClientDisconnected, GatewayError, PermissionDenied, UpstreamError, UpstreamTimeout
from gateway.keys.auth import Authenticator
from gateway.keys.model import KeyInfo
from gateway.ledger.exchange import Exchange
from gateway.ledger.writer import UsageWriter
from gateway.providers.base import Adapter, UpstreamRequest
from gateway.proxy.body import Endpoint
from gateway.proxy.ingress import OPENAI, Ingress
from gateway.proxy.streaming import StreamRelay
from gateway.proxy.upstream import Upstream
from gateway.web.errors import status_and_type

_T = TypeVar("_T")
# Server-sent events, and Bedrock's binary event stream.
_STREAM_MEDIA_TYPES = ("text/event-stream", "application/vnd.amazon.eventstream")


class Inbound(Protocol):
    """The client's side of a request, as the pipeline needs it."""

    @property
    def headers(self) -> Mapping[str, str]: ...

    async def body(self) -> bytes: ...

    async def disconnected(self) -> None:
        """Return once the client has gone away (never, while it stays)."""


class Pipeline:
    def __init__(
        self,
        *,
        auth: Authenticator,
        catalog: Catalog,
        upstream: Upstream,
        adapters: Mapping[str, Adapter],
        ledger: UsageWriter,
    ) -> None:
        self._auth = auth
        self.catalog = catalog
        self._upstream = upstream
        self._adapters = adapters
        self._ledger = ledger

    async def handle(self, request_id: str, endpoint: Endpoint, client: Inbound, ingress: Ingress = OPENAI) -> ASGIApp:
        exchange = Exchange(request_id=request_id, endpoint=endpoint.name)
        handed_to_stream = False
        try:
            exchange.key = await self._auth.authenticate(client.headers)
            payload = ingress.parse(await client.body(), endpoint)
            exchange.model = payload["model"]
            route = exchange.route = self.route(payload["model"], exchange.key)
            # Quota admission (reserve an estimate) goes here; settlement at record time.
            adapter = self._adapters[route.backend.kind]
            upstream = adapter.request(endpoint, payload, route)
            if payload.get("stream"):
                relay = await _unless_client_leaves(
                    client, self._open_stream(exchange, adapter, endpoint, payload, upstream, ingress)
                )
                handed_to_stream = True
                return relay
            body = await self._forward(route, adapter, upstream)
            content, exchange.usage = adapter.response(endpoint, body)
            return ASGIResponse(body=ingress.respond(content, payload), media_type="application/json")
        except GatewayError as exc:
            exchange.status, _ = status_and_type(exc)
            exchange.error_type = type(exc).__name__
            raise
        except asyncio.CancelledError:
            exchange.status, exchange.error_type = 499, "cancelled"
            raise
        except BaseException:
            exchange.status, exchange.error_type = 500, "internal"
            raise
        finally:
            if not handed_to_stream:
                self.record(exchange)

    async def authenticate(self, headers: Mapping[str, str]) -> KeyInfo:
        return await self._auth.authenticate(headers)

    def route(self, model: str, key: KeyInfo) -> ModelRoute:
        route = self.catalog.resolve(model)
        if not key.may_use(model):
            raise PermissionDenied(f"This API key may not use the model '{model}'.", param="model")
        return route

    async def relay_json(self, route: ModelRoute, request: UpstreamRequest) -> bytes:
        """A side request to a model's backend (not metered): the answer's body, or its error."""
        adapter = self._adapters[route.backend.kind]
        with _upstream_failures(route):
            response = await self._upstream.send(request.url, request.headers, request.body, 30.0)
            try:
                body = await response.aread()
            finally:
                await response.aclose()
        if response.status_code >= 300:
            raise adapter.error(route, response.status_code, body, response.headers.get("retry-after"))
        return body

    def record(self, exchange: Exchange) -> None:
        self._ledger.record(exchange.to_row())

    async def _forward(self, route: ModelRoute, adapter: Adapter, upstream: UpstreamRequest) -> bytes:
        with _upstream_failures(route):
            response = await self._upstream.send(
                upstream.url, upstream.headers, upstream.body, route.backend.timeout_seconds
            )
            try:
                body = await response.aread()
            finally:
                await response.aclose()  # a failed read must still give the connection back
        if response.status_code >= 300:
            raise adapter.error(route, response.status_code, body, response.headers.get("retry-after"))
        return body

    async def _open_stream(
        self,
        exchange: Exchange,
        adapter: Adapter,
        endpoint: Endpoint,
        payload: dict[str, Any],
        upstream: UpstreamRequest,
        ingress: Ingress,
    ) -> StreamRelay:
        route = exchange.route
        assert route is not None
        exchange.streamed = True
        with _upstream_failures(route):
            response = await self._upstream.send(
                upstream.url, upstream.headers, upstream.body, route.backend.timeout_seconds
            )
        streaming = response.headers.get("content-type", "").startswith(_STREAM_MEDIA_TYPES)
        if response.status_code >= 300 or not streaming:
            try:
                body = await response.aread()
            except httpx.HTTPError:
                body = b""
            finally:
                await response.aclose()
            if response.status_code < 300:
                raise UpstreamError(f"Backend '{route.backend.name}' answered a stream request without a stream.")
            raise adapter.error(route, response.status_code, body, response.headers.get("retry-after"))
        tap = ingress.stream(adapter.stream(endpoint, payload), payload)
        return StreamRelay(exchange, response, tap, payload, self.record)


@contextlib.contextmanager
def _upstream_failures(route: ModelRoute) -> Iterator[None]:
    """Turn transport failures into domain errors that name the backend, never its credentials."""
    try:
        yield
    except httpx.TimeoutException:
        raise UpstreamTimeout(f"Backend '{route.backend.name}' did not answer in time.") from None
    except httpx.HTTPError as exc:
        raise UpstreamError(f"Backend '{route.backend.name}' could not be reached: {type(exc).__name__}.") from None
    except (ValueError, UnicodeError) as exc:  # e.g. a header value the HTTP client refuses to send
        raise UpstreamError(f"Backend '{route.backend.name}' could not be called: {type(exc).__name__}.") from None


async def _unless_client_leaves(client: Inbound, work: Coroutine[Any, Any, _T]) -> _T:
    """Run ``work`` (waiting for a backend's first byte), cancelling it if the client goes away:
    a slow model's prompt processing is not paid for by a client that has already left."""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(client.disconnected())
    try:
        await asyncio.wait((task, watch), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)  # let its own cleanup run
    if task.cancelled():
        raise ClientDisconnected("The client went away before the backend answered.")
    return task.result()
