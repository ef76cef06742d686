"""A deterministic, fast, OpenAI-compatible fake upstream for tests and benchmarks.

It speaks just enough HTTP/1.1 (keep-alive, pipelining, chunked request bodies) straight on an
asyncio `Protocol` with httptools, so a benchmark of the gateway measures the gateway, not this.
Markers inside the model name choose misbehaviour (`slow-<ms>`, `chunkdelay-<ms>`,
`error-<status>`, `hang`, `tokens-<p>-<c>`, `streamerror`); see `fake_responses.parse_behaviour`.

Run standalone with `python -m gateway.testing.fake_upstream --port 9100 [--no-record]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import itertools
import logging
import signal
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, cast
from urllib.parse import unquote

import httptools
import msgspec

from gateway.testing import fake_responses as fr

MAX_RECORDED = 1000
MAX_QUEUED = 64  # pipelined requests buffered per connection before we stop reading from it
DEFAULT_MODELS: tuple[str, ...] = ("fake-model", "fake-embedding")
SSE_DONE = b"data: [DONE]\n\n"
SSE_HEADERS = (("cache-control", "no-cache"),)
_MALFORMED = object()  # sentinel: the body was present but not JSON
STREAM_ERROR_EVENTS = 3  # role chunk + two content chunks, then the connection is cut

log = logging.getLogger(__name__)
Endpoint = Callable[[Any, int, fr.BehaviourLookup], fr.Answer]


@dataclass(slots=True)
class RecordedRequest:
    """One request as the fake received it, for tests to check what the gateway sent upstream."""

    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-case names
    body: Any  # parsed JSON, or None when the body was empty or not JSON


@dataclass(slots=True)
class _Request:
    method: str
    target: bytes
    headers: dict[str, str]
    body: bytes
    keep_alive: bool
    http11: bool


@dataclass(slots=True)
class _Reply:
    status: int
    body: bytes = b""
    events: Iterator[bytes] | None = None  # SSE events, already framed as `data: ...\n\n`
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0  # seconds before the response headers
    chunk_delay: float = 0.0  # seconds between stream events
    hang: bool = False
    abort: bool = False  # cut the connection after `events` instead of finishing the stream

    @property
    def immediate(self) -> bool:
        return not (self.delay or self.chunk_delay or self.hang)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _head(
    status: int, content_type: str, framing: str, keep_alive: bool, extra: tuple[tuple[str, str], ...] = ()
) -> bytes:
    """Status line and headers; `framing` is a content-length or transfer-encoding line, or ""."""
    lines = [f"HTTP/1.1 {status} {_phrase(status)}", "server: fake-upstream", f"content-type: {content_type}"]
    if framing:
        lines.append(framing)
    lines.append("connection: keep-alive" if keep_alive else "connection: close")
    lines.extend(f"{name}: {value}" for name, value in extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _Connection(asyncio.Protocol):
    """One client connection: parses requests and answers them strictly in order."""

    def __init__(self, app: FakeUpstream) -> None:
        self._app = app
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport  # set by connection_made, before any other callback
        self._url = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._queue: deque[_Request] = deque()
        self._task: asyncio.Task[None] | None = None
        self._writable = asyncio.Event()  # cleared while the transport's write buffer is full
        self._writable.set()
        self._reading_paused = False
        self._in_stream = False
        self._closed = False
        self._closed_by_us = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._app._connections.add(self)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # no protocol switching here: the request itself was already handled as plain HTTP
        except httptools.HttpParserCallbackError:  # a bug in a handler, not in the client
            log.exception("fake upstream failed while handling a request")
            self._fail(fr.RequestError(500, "The fake upstream failed; see its log."))
        except httptools.HttpParserError:
            self._fail(fr.RequestError(400, "Malformed HTTP request."))

    def _fail(self, err: fr.RequestError) -> None:
        self._send(_Request("", b"", {}, b"", False, True), self._app._error(err))  # not keep-alive: closes

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._app._connections.discard(self)
        if self._in_stream and not self._closed_by_us:
            self._app.disconnects += 1
        if self._task is not None:
            self._task.cancel()  # stop writing: nobody is listening any more
        self._writable.set()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

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
        request = _Request(
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

    def _serve(self, request: _Request) -> None:
        """Answer `request`, then queued ones, synchronously until one needs to wait."""
        while True:
            reply = self._app._dispatch(request)
            if not reply.immediate:
                self._task = asyncio.get_running_loop().create_task(self._serve_later(request, reply))
                return
            self._send(request, reply)
            if self._closed or not self._queue:
                return
            request = self._next_queued()

    def _next_queued(self) -> _Request:
        if self._reading_paused and len(self._queue) <= MAX_QUEUED // 2:
            self._transport.resume_reading()
            self._reading_paused = False
        return self._queue.popleft()

    async def _serve_later(self, request: _Request, reply: _Reply) -> None:
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

    async def _send_slowly(self, request: _Request, reply: _Reply) -> None:
        # A stream counts as started (for disconnect accounting) from the moment it is accepted.
        self._in_stream = reply.events is not None
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.hang:
            await asyncio.get_running_loop().create_future()  # resolved never; cancelled on close
        if reply.events is None:
            self._send(request, reply)
            return
        self._write(self._stream_head(request, reply))
        for index, event in enumerate(reply.events):
            if index and reply.chunk_delay:
                await asyncio.sleep(reply.chunk_delay)
            self._write_event(request, event)
            if not self._writable.is_set():
                await self._writable.wait()  # back-pressure from a slow reader
        self._end_stream(request, reply)

    def _send(self, request: _Request, reply: _Reply) -> None:
        if reply.events is None:
            framing = f"content-length: {len(reply.body)}"
            head = _head(reply.status, "application/json", framing, request.keep_alive, reply.headers)
            self._write(head if request.method == "HEAD" else head + reply.body)  # keeps framing
            if not request.keep_alive:
                self._close()
            return
        self._in_stream = True
        self._write(self._stream_head(request, reply))
        for event in reply.events:
            self._write_event(request, event)
        self._end_stream(request, reply)

    def _stream_head(self, request: _Request, reply: _Reply) -> bytes:
        # HTTP/1.0 has no chunked encoding: such streams are delimited by closing the connection.
        framing = "transfer-encoding: chunked" if request.http11 else ""
        keep_alive = request.keep_alive and request.http11
        return _head(reply.status, "text/event-stream; charset=utf-8", framing, keep_alive, reply.headers)

    def _write_event(self, request: _Request, event: bytes) -> None:
        self._write(b"%x\r\n%b\r\n" % (len(event), event) if request.http11 else event)

    def _end_stream(self, request: _Request, reply: _Reply) -> None:
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


class FakeUpstream:
    """An OpenAI-compatible HTTP server with deterministic answers (see the module docstring)."""

    def __init__(
        self,
        *,
        record: bool = True,
        models: tuple[str, ...] = DEFAULT_MODELS,
        embedding_dim: int = fr.DEFAULT_EMBEDDING_DIM,
    ) -> None:
        self.record = record
        self.models = models
        self.embedding_dim = embedding_dim
        self.disconnects = 0
        self.completed_streams = 0
        self.request_count = 0
        self._recorded: deque[RecordedRequest] = deque(maxlen=MAX_RECORDED)
        self._server: asyncio.Server | None = None
        self._host = "127.0.0.1"
        self._port = 0
        self._seq = itertools.count(1)
        self._connections: set[_Connection] = set()
        # Per instance and bounded: benchmarks send the same few model names millions of times.
        self._behaviour = functools.lru_cache(maxsize=1024)(fr.parse_behaviour)
        self._decode = msgspec.json.Decoder().decode
        self._encode = msgspec.json.Encoder().encode
        self._routes: dict[tuple[str, str], Endpoint] = {
            ("POST", "/v1/chat/completions"): fr.chat,
            ("POST", "/v1/completions"): fr.completions,
            ("POST", "/v1/embeddings"): functools.partial(fr.embeddings, default_dim=embedding_dim),
        }

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), host, port, backlog=1024)
        self._host = host
        self._port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        tasks = [task for conn in list(self._connections) if (task := conn.shutdown()) is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> FakeUpstream:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeUpstream is not started")
        return self._port

    @property
    def base_url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the last `MAX_RECORDED` requests, oldest first."""
        return list(self._recorded)

    def clear_requests(self) -> None:
        self._recorded.clear()
        self.request_count = 0

    def reset(self) -> None:
        self.clear_requests()
        self.disconnects = 0
        self.completed_streams = 0

    def stats(self) -> fr.Json:
        return {
            "disconnects": self.disconnects,
            "completed_streams": self.completed_streams,
            "requests": self.request_count,
        }

    def _dispatch(self, request: _Request) -> _Reply:
        raw_path, _, raw_query = request.target.partition(b"?")
        path, query = raw_path.decode("latin-1"), raw_query.decode("latin-1")
        if path.startswith("/_fake/"):
            return self._introspect(request.method, path)
        self.request_count += 1
        try:
            body = self._decode(request.body) if request.body else None
        except msgspec.DecodeError:
            body = _MALFORMED
        if self.record:
            recorded_body = None if body is _MALFORMED else body
            self._recorded.append(RecordedRequest(request.method, path, query, request.headers, recorded_body))
        try:
            return self._route(request.method, path, body)
        except fr.RequestError as err:
            return self._error(err)

    def _route(self, method: str, path: str, body: Any) -> _Reply:
        endpoint = self._routes.get((method, path))
        if endpoint is not None:
            if body is _MALFORMED:
                raise fr.RequestError(400, "We could not parse the JSON body of your request.")
            return self._deliver(endpoint(body, next(self._seq), self._behaviour))
        if method == "GET" and path == "/v1/models":
            return self._json(fr.model_list(self.models))
        if method == "GET" and path.startswith("/v1/models/") and len(path) > len("/v1/models/"):
            return self._json(fr.model_object(unquote(path[len("/v1/models/") :])))
        raise fr.RequestError(404, f"Invalid URL ({method} {path})", code="unknown_url")

    def _introspect(self, method: str, path: str) -> _Reply:
        if path == "/_fake/requests" and method == "GET":
            return self._json(list(self._recorded))  # msgspec encodes dataclasses as objects
        if path == "/_fake/requests" and method == "DELETE":
            deleted = len(self._recorded)
            self.clear_requests()
            return self._json({"deleted": deleted})
        if path == "/_fake/stats" and method == "GET":
            return self._json(self.stats())
        if path == "/_fake/stats" and method == "DELETE":
            self.reset()
            return self._json(self.stats())
        return self._error(fr.RequestError(404, f"Invalid URL ({method} {path})", code="unknown_url"))

    def _json(self, payload: Any, status: int = 200) -> _Reply:
        return _Reply(status, self._encode(payload))

    def _error(self, err: fr.RequestError) -> _Reply:
        return _Reply(err.status, self._encode(err.body()), headers=err.headers)

    def _deliver(self, answer: fr.Answer) -> _Reply:
        """Encode an endpoint's answer, applying the markers of the requested model."""
        behaviour = answer.behaviour
        if behaviour.error_status is not None:
            reply = self._error(fr.marker_error(behaviour.error_status))
        elif answer.chunks is not None:
            reply = self._stream(answer.chunks, behaviour)
        else:
            reply = self._json(answer.payload)
        reply.delay = behaviour.slow_ms / 1000
        reply.hang = behaviour.hang
        return reply

    def _stream(self, chunks: Iterator[fr.Json], behaviour: fr.Behaviour) -> _Reply:
        encode = self._encode
        events: Iterator[bytes] = (b"data: " + encode(chunk) + b"\n\n" for chunk in chunks)
        reply = _Reply(200, chunk_delay=behaviour.chunk_delay_ms / 1000, headers=SSE_HEADERS)
        if behaviour.stream_error:
            reply.events, reply.abort = itertools.islice(events, STREAM_ERROR_EVENTS), True
        else:
            reply.events = itertools.chain(events, (SSE_DONE,))
        return reply


# -- command line ----------------------------------------------------------------------------------


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m gateway.testing.fake_upstream",
        description="Deterministic OpenAI-compatible fake upstream.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--no-record", action="store_true", help="do not record requests (benchmarks)")
    return parser.parse_args(argv)


async def _serve_forever(args: argparse.Namespace) -> None:
    fake = FakeUpstream(record=not args.no_record)
    await fake.start(args.host, args.port)
    current = asyncio.current_task()
    if current is not None:  # SIGTERM ends the process as cleanly as Ctrl-C does
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, current.cancel)
    print(f"fake-upstream listening on http://{args.host}:{fake.port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return cast(Callable[[], asyncio.AbstractEventLoop], uvloop.new_event_loop)


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    with (
        contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError),
        asyncio.Runner(loop_factory=_loop_factory()) as runner,
    ):
        runner.run(_serve_forever(args))


if __name__ == "__main__":
    main()
