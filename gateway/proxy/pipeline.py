"""The request path, top to bottom: authenticate, route, admit (quotas), forward, settle, record.

No SQL here after start-up: keys come from the authenticator's cache; models, backends and limits
from the runtime snapshot, taken once per request; the usage record goes to the batched writer.
Every request that enters ``handle`` leaves exactly one usage record, whether it succeeds, fails,
streams or is cut short.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterable, AsyncIterator, Iterator, Mapping
from typing import Any, Protocol

import httpx
from litestar.response.base import ASGIResponse
from litestar.types import ASGIApp

from gateway.catalog.registry import Catalog, ModelRoute
from gateway.errors import (
    GatewayError,
    InvalidRequest,
    Overloaded,
    PermissionDenied,
    RequestTimeout,
    UpstreamError,
    UpstreamTimeout,
)
from gateway.keys.auth import Authenticator
from gateway.keys.model import KeyInfo
from gateway.ledger.tokens import estimate_reply_usage
from gateway.ledger.writer import UsageWriter
from gateway.providers.base import Adapter, UpstreamRequest
from gateway.proxy.departure import unless_client_leaves
from gateway.proxy.exchange import Exchange
from gateway.proxy.ingress import OPENAI, Ingress
from gateway.proxy.streaming import StreamRelay
from gateway.quotas.service import Quotas
from gateway.snapshot.state import LiveSnapshot, Snapshot
from gateway.upstream.client import Upstream
from gateway.web.errors import status_and_type
from gateway.wire.endpoints import Endpoint
from gateway.wire.multipart import FormStream

# Server-sent events, and Bedrock's binary event stream.
_OUTPUT_LIMITS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
# The field that carries a version's output cap into a request that names none, by endpoint.
_CAPPED_BY = {"chat.completions": "max_tokens", "completions": "max_tokens", "responses": "max_output_tokens"}
_STREAM_MEDIA_TYPES = ("text/event-stream", "application/vnd.amazon.eventstream")


class Inbound(Protocol):
    """The client's side of a request, as the pipeline needs it."""

    @property
    def headers(self) -> Mapping[str, str]: ...

    async def body(self) -> bytes: ...

    def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives (uploads); raises RequestTooLarge or ClientDisconnected."""
        ...

    async def disconnected(self) -> None:
        """Return once the client has gone away (never, while it stays)."""


class Pipeline:
    def __init__(
        self,
        *,
        auth: Authenticator,
        live: LiveSnapshot,
        upstream: Upstream,
        adapters: Mapping[str, Adapter],
        ledger: UsageWriter,
        quotas: Quotas,
        max_upload_bytes: int = 25 * 1024 * 1024,
        max_concurrent_uploads: int = 64,
        upload_idle_seconds: float = 30.0,
        refuse_unpriced: bool = False,
    ) -> None:
        self._auth = auth
        self._live = live
        self._upstream = upstream
        self._adapters = adapters
        self._ledger = ledger
        self._quotas = quotas
        self._max_upload_bytes = max_upload_bytes
        self._uploads = asyncio.Semaphore(max_concurrent_uploads)
        self._upload_idle_seconds = upload_idle_seconds
        self._refuse_unpriced = refuse_unpriced

    async def handle(self, request_id: str, endpoint: Endpoint, client: Inbound, ingress: Ingress = OPENAI) -> ASGIApp:
        exchange = Exchange(request_id=request_id, endpoint=endpoint.name)
        snapshot = self._live.current  # this request reads this snapshot alone, to its end
        with self._accounting(exchange) as account:
            exchange.key = await self._auth.authenticate(client.headers)
            if endpoint.form:
                return account.hand_over(await self._upload(exchange, snapshot, endpoint, client))
            body = ingress.decode(await client.body(), endpoint)
            exchange.model = body["model"]
            route = exchange.route = self._route(snapshot.catalog, body["model"], exchange.key, body.get("user"))
            if route.max_tokens is not None:
                cap_output(body, route.max_tokens, endpoint)
            if route.backend.kind == ingress.native_kind:  # client and backend speak one schema: pass through
                adapter, payload, ingress = ingress.native_adapter(client.headers), body, OPENAI
            else:
                adapter, payload = self._adapters[route.backend.kind], ingress.translate(body)
            upstream = adapter.request(endpoint, payload, route)  # first: a request it refuses costs no quota
            admission = exchange.admission = await self._quotas.admit(
                snapshot.limits, request_id, exchange.key, route, endpoint, payload
            )
            if payload.get("stream") or endpoint.relays:
                opening = self._open_stream(exchange, adapter, endpoint, payload, upstream, ingress)
                return account.hand_over(await unless_client_leaves(client, opening))
            headers = admission.headers if admission is not None else None
            reply = await unless_client_leaves(client, self._forward(route, adapter, upstream))
            content, exchange.usage = adapter.response(endpoint, reply)
            if exchange.usage is None:  # e.g. moderations, which report none: count it here
                exchange.usage = await asyncio.to_thread(estimate_reply_usage, payload, content)
            content = ingress.respond(content, payload, route)
            return ASGIResponse(body=content, media_type="application/json", headers=headers)
        raise AssertionError("unreachable")  # the accounting context never swallows an exception

    async def _upload(self, exchange: Exchange, snapshot: Snapshot, endpoint: Endpoint, client: Inbound) -> StreamRelay:
        """A multipart upload (audio): routed on its ``model`` field, streamed on to the backend as
        it arrives. Its reply is relayed the same way, so nothing is held whole in memory."""
        assert exchange.key is not None
        if self._uploads.locked():  # each upload holds a backend connection for as long as it lasts
            raise Overloaded("Too many uploads are in progress; retry shortly.")
        async with self._uploads:
            chunks = _idle_limited(client.chunks(), self._upload_idle_seconds)
            form = await FormStream.open(
                client.headers.get("content-type", ""), chunks, max_total_bytes=self._max_upload_bytes
            )
            upload = _Upload(form)
            try:
                exchange.model = form.fields["model"]
                route = exchange.route = self._route(snapshot.catalog, exchange.model, exchange.key, None)
                adapter = self._adapters[route.backend.kind]
                upstream = adapter.upload(endpoint, form, route)  # first: an upload it refuses costs no quota
                exchange.admission = await self._quotas.admit(
                    snapshot.limits, exchange.request_id, exchange.key, route, endpoint, form.fields
                )
                upstream = dataclasses.replace(upstream, body=upload.body(upstream.body))
                relay = await self._open_stream(exchange, adapter, endpoint, form.fields, upstream, OPENAI)
            except UpstreamError:
                if upload.failure is not None:  # the upload failed on the client's side (too large, cut off)
                    raise upload.failure from None
                raise
            finally:
                if not upload.started:
                    await form.aclose()
            # A backend may answer before it has read the whole upload: the client's remaining body is
            # still being forwarded, so the relay watches for a disconnect only once that is done.
            relay.watch_after(upload.done)
            return relay

    @contextlib.contextmanager
    def _accounting(self, exchange: Exchange) -> Iterator[_Account]:
        """Record the exchange once, with the status its failure maps to, unless a stream took it."""
        account = _Account()
        try:
            yield account
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
            if not account.handed_over:
                self.record(exchange)

    async def authenticate(self, headers: Mapping[str, str]) -> KeyInfo:
        return await self._auth.authenticate(headers)

    @property
    def catalog(self) -> Catalog:
        """The models in force now (for the model list and side requests)."""
        return self._live.current.catalog

    def route(self, model: str, key: KeyInfo, user: object = None) -> ModelRoute:
        return self._route(self.catalog, model, key, user)

    def _route(self, catalog: Catalog, model: str, key: KeyInfo, user: object) -> ModelRoute:
        # A canary's share is sticky per end user when the request names one, else per key (the
        # sticky string is made only when some model has a canary).
        sticky = (user if isinstance(user, str) and user else key.id.hex) if catalog.canaries else ""
        route = catalog.resolve(model, sticky)
        if not key.may_use(model):
            raise PermissionDenied(f"This API key may not use the model '{model}'.", param="model")
        if route.unpriced and self._refuse_unpriced:
            raise InvalidRequest(
                f"The model '{model}' has no prices, and this gateway refuses unpriced models "
                "(GATEWAY_UNPRICED_MODELS=refuse).",
                param="model",
                code="model_unpriced",
            )
        return route

    async def relay_json(self, route: ModelRoute, request: UpstreamRequest) -> bytes:
        """A side request to a model's backend (not metered): the answer's body, or its error."""
        adapter = self._adapters[route.backend.kind]
        with _upstream_failures(route):
            response = await self._upstream.send(
                request.url, request.headers, request.body, route.backend.timeout_seconds
            )
            try:
                body = await response.aread()
            finally:
                await response.aclose()
        if response.status_code >= 300:
            raise adapter.error(route, response.status_code, body, response.headers.get("retry-after"), request.url)
        return body

    def record(self, exchange: Exchange) -> None:
        if exchange.admission is not None:
            # No usage after the client left or the backend timed out: the backend may still have
            # worked on the prompt, so it is charged as estimated rather than not at all.
            unknown = exchange.usage is None and exchange.status in (499, 504)
            failed = exchange.status >= 400
            cost = exchange.cost_nano_usd()
            self._quotas.settle(exchange.admission, exchange.usage, cost, failed=failed, outcome_unknown=unknown)
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
            raise adapter.error(route, response.status_code, body, response.headers.get("retry-after"), upstream.url)
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
        exchange.streamed = payload.get("stream") is True
        with _upstream_failures(route):
            response = await self._upstream.send(
                upstream.url, upstream.headers, upstream.body, route.backend.timeout_seconds
            )
        media_type = response.headers.get("content-type", "")
        streaming = media_type.startswith(_STREAM_MEDIA_TYPES)
        exchange.streamed = streaming or payload.get("stream") is True
        if response.status_code >= 300 or not (streaming or endpoint.relays):
            try:
                body = await response.aread()
            except httpx.HTTPError:
                body = b""
            finally:
                await response.aclose()
            if response.status_code < 300:
                raise UpstreamError(f"Backend '{route.backend.name}' answered a stream request without a stream.")
            raise adapter.error(route, response.status_code, body, response.headers.get("retry-after"), upstream.url)
        tap = ingress.stream(adapter.stream(endpoint, payload, media_type), payload, route, endpoint)
        # A relayed reply (audio, a transcript) keeps its type; event streams get the SSE headers.
        return StreamRelay(
            exchange,
            response,
            tap,
            payload,
            self.record,
            media_type=getattr(tap, "media_type", None),
            headers=exchange.admission.headers if exchange.admission is not None else None,
        )


def cap_output(body: dict[str, Any], cap: int, endpoint: Endpoint) -> None:
    """A version's ``max_tokens`` cap: a request asking for more is refused (naming the field);
    one asking for nothing gets the cap, so no request can go past it."""
    asked = False
    for name in _OUTPUT_LIMITS:
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            asked = True
            if value > cap:
                raise InvalidRequest(
                    f"'{name}' is {value}; this model allows at most {cap} output tokens.",
                    param=name,
                    code="max_tokens_exceeded",
                )
    if not asked and endpoint.name in _CAPPED_BY:
        body[_CAPPED_BY[endpoint.name]] = cap


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


class _Account:
    handed_over = False

    def hand_over(self, relay: StreamRelay) -> StreamRelay:
        """The stream relay records the exchange from here on, when the stream ends."""
        self.handed_over = True
        return relay


class _Upload:
    """An upload's body on its way to the backend. It owns the form from its first byte and closes
    it when the body ends, however it ends: the HTTP client may still be sending it after the
    backend's answer has started (or failed), so nothing else may close it under the sender."""

    def __init__(self, form: FormStream) -> None:
        self._form = form
        self.started = False
        self.done = asyncio.Event()
        self.failure: GatewayError | None = None

    async def body(self, source: bytes | AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        self.started = True
        try:
            if isinstance(source, bytes):
                yield source
                return
            async for chunk in source:
                yield chunk
        except GatewayError as exc:
            # The HTTP client reports this as a broken request; it is the client's failure, not the backend's.
            self.failure = exc
            raise
        finally:
            self.done.set()
            await self._form.aclose()


async def _idle_limited(chunks: AsyncIterator[bytes], seconds: float) -> AsyncIterator[bytes]:
    """The client's body, failing if it stops sending for ``seconds``: an upload holds a backend
    connection, which a client trickling bytes must not keep for ever."""
    while True:
        try:
            async with asyncio.timeout(seconds):
                chunk = await anext(chunks)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise RequestTimeout(f"The upload stalled: nothing arrived for {seconds:g} seconds.") from None
        yield chunk
