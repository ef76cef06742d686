"""The HTTP/1.1 side of the fake upstream: just enough of the protocol, straight on asyncio.

Keep-alive, pipelining (answered strictly in order), chunked request bodies, `Expect:
100-continue`, HTTP/1.0 clients, and write back-pressure, with httptools doing the parsing. What
to answer is up to the `Application` (the `FakeUpstream` server): a connection hands it each
complete `Request` and writes out the `Reply` it gets back, as a sized body or an SSE stream.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Protocol, cast

import httptools

from fakes.fake_validation import RequestError

MAX_QUEUED = 64  # pipelined requests buffered per connection before we stop reading from it

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Request:
    method: str
    target: bytes
    headers: dict[str, str]  # lower-case names
    body: bytes
    keep_alive: bool
    http11: bool


@dataclass(slots=True)
class Reply:
    status: int
    body: bytes = b""
    events: Iterator[bytes] | None = None  # SSE events, already framed as `data: ...\n\n`
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0  # seconds before the response headers
    chunk_delay: float = 0.0  # seconds between stream events
    first_byte_delay: float = 0.0  # seconds between the headers and the first event (or the body)
    hang: bool = False
    stall: bool = False  # after the headers and the first event (a body: only the headers), send nothing
    abort: bool = False  # cut the connection after `events` instead of finishing the stream
    content_type: str | None = None  # default: JSON for a body, server-sent events for `events`

    @property
    def immediate(self) -> bool:
        return not (self.delay or self.chunk_delay or self.hang or self.first_byte_delay or self.stall)


class Application(Protocol):
    """What a connection needs from the server it belongs to."""

    connections: set[Connection]  # the open ones, so that stopping the server can drop them
    disconnects: int  # streams the client went away from
    abandoned: int  # delayed or hanging replies (streamed or not) the client went away from first
    completed_streams: int

    def dispatch(self, request: Request) -> Reply: ...

    def error_reply(self, err: RequestError) -> Reply: ...


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def response_head(
    status: int, content_type: str, framing: str, keep_alive: bool, extra: tuple[tuple[str, str], ...] = ()
) -> bytes:
    """Status line and headers; `framing` is a content-length or transfer-encoding line, or ""."""
    lines = [f"HTTP/1.1 {status} {_phrase(status)}", "server: fake-upstream", f"content-type: {content_type}"]
    if framing:
        lines.append(framing)
    lines.append("connection: keep-alive" if keep_alive else "connection: close")
    lines.extend(f"{name}: {value}" for name, value in extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class Connection(asyncio.Protocol):
    """One client connection: parses requests and answers them strictly in order."""

    def __init__(self, app: Application) -> None:
        self._app = app
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport  # set by connection_made, before any other callback
        self._url = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._queue: deque[Request] = deque()
        self._task: asyncio.Task[None] | None = None
        self._writable = asyncio.Event()  # cleared while the transport's write buffer is full
        self._writable.set()
        self._reading_paused = False
        self._in_stream = False
        self._closed = False
        self._closed_by_us = False

    # -- asyncio.Protocol callbacks ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._app.connections.add(self)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # no protocol switching here: the request itself was already handled as plain HTTP
        except httptools.HttpParserCallbackError:  # a bug in a handler, not in the client
            log.exception("fake upstream failed while handling a request")
            self._fail(RequestError(500, "The fake upstream failed; see its log."))
        except httptools.HttpParserError:
            self._fail(RequestError(400, "Malformed HTTP request."))

    def _fail(self, err: RequestError) -> None:
        self._send(Request("", b"", {}, b"", False, True), self._app.error_reply(err))  # not keep-alive: closes

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._app.connections.discard(self)
        if self._in_stream and not self._closed_by_us:
            self._app.disconnects += 1
        if self._task is not None and not self._closed_by_us:
            self._app.abandoned += 1
        if self._task is not None:
            self._task.cancel()  # stop writing: nobody is listening any more
        self._writable.set()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # -- httptools parser callbacks ---------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url, self._headers, self._body = b"", {}, []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        old = self._headers.get(key)
        self._headers[key] = text if old is None else f"{old}, {text}"

    def on_headers_complete(self) -> None:
        # curl and others wait for this before sending a large body.
        expects = self._headers.get("expect", "").lower() == "100-continue"
        if expects and self._task is None and not self._queue:  # not in front of earlier answers
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._closed:
            return
        parser = self._parser
        request = Request(
            parser.get_method().decode("latin-1"),
            self._url,
            self._headers,
            b"".join(self._body),
            parser.should_keep_alive(),
            parser.get_http_version() == "1.1",
        )
        if self._task is not None or self._queue:  # pipelined behind a response still in progress
            self._queue.append(request)
            if len(self._queue) >= MAX_QUEUED:
                self._transport.pause_reading()
                self._reading_paused = True
            return
        self._serve(request)

    # -- answering, in order ----------------------------------------------------------------------

    def _serve(self, request: Request) -> None:
        """Answer `request`, then queued ones, synchronously until one needs to wait."""
        while True:
            reply = self._app.dispatch(request)
            if not reply.immediate:
                self._task = asyncio.get_running_loop().create_task(self._serve_later(request, reply))
                return
            self._send(request, reply)
            if self._closed or not self._queue:
                return
            request = self._next_queued()

    def _next_queued(self) -> Request:
        if self._reading_paused and len(self._queue) <= MAX_QUEUED // 2:
            self._transport.resume_reading()
            self._reading_paused = False
        return self._queue.popleft()

    async def _serve_later(self, request: Request, reply: Reply) -> None:
        try:
            await self._send_slowly(request, reply)
        except asyncio.CancelledError:
            return  # the client went away or the server is stopping
        except Exception:
            log.exception("fake upstream failed while answering %s", request.target)
            self._close()
        finally:
            self._task = None
        if not self._closed and self._queue:
            self._serve(self._next_queued())

    async def _send_slowly(self, request: Request, reply: Reply) -> None:
        # A stream counts as started (for disconnect accounting) from the moment it is accepted.
        self._in_stream = reply.events is not None
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.hang:
            await _forever()
        if reply.events is None:
            await self._send_body_slowly(request, reply)
            return
        self._write(self._stream_head(request, reply))
        for index, event in enumerate(reply.events):
            if index == 0 and reply.first_byte_delay:
                await asyncio.sleep(reply.first_byte_delay)
            elif index and reply.chunk_delay:
                await asyncio.sleep(reply.chunk_delay)
            self._write_event(request, event)
            if reply.stall:
                await _forever()
            if not self._writable.is_set():
                await self._writable.wait()  # back-pressure from a slow reader
        self._end_stream(request, reply)

    async def _send_body_slowly(self, request: Request, reply: Reply) -> None:
        """A sized body, its headers sent first when the body is to be late or never come."""
        if not (reply.first_byte_delay or reply.stall) or request.method == "HEAD":
            self._send(request, reply)
            return
        self._write(self._body_head(request, reply))
        if reply.first_byte_delay:
            await asyncio.sleep(reply.first_byte_delay)
        if reply.stall:
            await _forever()
        self._write(reply.body)
        if not request.keep_alive:
            self._close()

    # -- writing ----------------------------------------------------------------------------------

    def _send(self, request: Request, reply: Reply) -> None:
        if reply.events is None:
            head = self._body_head(request, reply)
            self._write(head if request.method == "HEAD" else head + reply.body)  # keeps framing
            if not request.keep_alive:
                self._close()
            return
        self._in_stream = True
        self._write(self._stream_head(request, reply))
        for event in reply.events:
            self._write_event(request, event)
        self._end_stream(request, reply)

    def _body_head(self, request: Request, reply: Reply) -> bytes:
        content_type = reply.content_type or "application/json"
        framing = f"content-length: {len(reply.body)}"
        return response_head(reply.status, content_type, framing, request.keep_alive, reply.headers)

    def _stream_head(self, request: Request, reply: Reply) -> bytes:
        # HTTP/1.0 has no chunked encoding: such streams are delimited by closing the connection.
        framing = "transfer-encoding: chunked" if request.http11 else ""
        keep_alive = request.keep_alive and request.http11
        content_type = reply.content_type or "text/event-stream; charset=utf-8"
        return response_head(reply.status, content_type, framing, keep_alive, reply.headers)

    def _write_event(self, request: Request, event: bytes) -> None:
        self._write(b"%x\r\n%b\r\n" % (len(event), event) if request.http11 else event)

    def _end_stream(self, request: Request, reply: Reply) -> None:
        self._in_stream = False
        if reply.abort:
            self._close(abort=True)
            return
        if request.http11:
            self._write(b"0\r\n\r\n")
        self._app.completed_streams += 1
        if not (request.keep_alive and request.http11):
            self._close()

    def _write(self, data: bytes) -> None:
        if not self._closed:
            self._transport.write(data)

    def _close(self, abort: bool = False) -> None:
        # Marked closed at once so nothing more is written or served, before connection_lost runs.
        self._closed = self._closed_by_us = True
        if abort:
            self._transport.abort()
        else:
            self._transport.close()

    def shutdown(self) -> asyncio.Task[None] | None:
        """Drop the connection because the server stops; returns the task to wait for."""
        self._close(abort=True)
        return self._task


async def _forever() -> None:
    """Wait until cancelled: when the client goes away or the server stops."""
    await asyncio.get_running_loop().create_future()
