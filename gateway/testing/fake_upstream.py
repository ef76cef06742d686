"""A deterministic, fast, OpenAI-compatible fake upstream for tests and benchmarks.

It speaks just enough HTTP/1.1 (keep-alive, pipelining, chunked request bodies) straight on an
asyncio `Protocol` with httptools (`fake_http`), so a benchmark of the gateway measures the
gateway, not this. This module is the server: routing, recording and introspection, and turning
the endpoints' payloads (`fake_chat`, `fake_completions`, `fake_embeddings`, `fake_models`) into
replies. Markers inside the model name choose misbehaviour (`slow-<ms>`, `chunkdelay-<ms>`,
`error-<status>`, `hang`, `tokens-<p>-<c>`, `streamerror`); see `fake_markers.parse_behaviour`.

Run standalone with `python -m gateway.testing.fake_upstream --port 9100 [--no-record]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import itertools
import signal
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import unquote

import msgspec

from gateway.testing.fake_chat import chat
from gateway.testing.fake_completions import completions
from gateway.testing.fake_embeddings import DEFAULT_EMBEDDING_DIM, embeddings
from gateway.testing.fake_http import Connection, Reply, Request
from gateway.testing.fake_markers import Behaviour, BehaviourLookup, marker_error, parse_behaviour
from gateway.testing.fake_models import model_list, model_object
from gateway.testing.fake_payloads import Answer
from gateway.testing.fake_validation import Json, RequestError

MAX_RECORDED = 1000
DEFAULT_MODELS: tuple[str, ...] = ("fake-model", "fake-embedding")
SSE_DONE = b"data: [DONE]\n\n"
SSE_HEADERS = (("cache-control", "no-cache"),)
_MALFORMED = object()  # sentinel: the body was present but not JSON
STREAM_ERROR_EVENTS = 3  # role chunk + two content chunks, then the connection is cut

Endpoint = Callable[[Any, int, BehaviourLookup], Answer]


@dataclass(slots=True)
class RecordedRequest:
    """One request as the fake received it, for tests to check what the gateway sent upstream."""

    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-case names
    body: Any  # parsed JSON, or None when the body was empty or not JSON


class FakeUpstream:
    """An OpenAI-compatible HTTP server with deterministic answers (see the module docstring)."""

    def __init__(
        self,
        *,
        record: bool = True,
        models: tuple[str, ...] = DEFAULT_MODELS,
        embedding_dim: int = DEFAULT_EMBEDDING_DIM,
    ) -> None:
        self.record = record
        self.models = models
        self.embedding_dim = embedding_dim
        self.disconnects = 0
        self.completed_streams = 0
        self.request_count = 0
        self.connections: set[Connection] = set()  # maintained by the connections themselves
        self._recorded: deque[RecordedRequest] = deque(maxlen=MAX_RECORDED)
        self._server: asyncio.Server | None = None
        self._host = "127.0.0.1"
        self._port = 0
        self._seq = itertools.count(1)
        # Per instance and bounded: benchmarks send the same few model names millions of times.
        self._behaviour = functools.lru_cache(maxsize=1024)(parse_behaviour)
        self._decode = msgspec.json.Decoder().decode
        self._encode = msgspec.json.Encoder().encode
        self._routes: dict[tuple[str, str], Endpoint] = {
            ("POST", "/v1/chat/completions"): chat,
            ("POST", "/v1/completions"): completions,
            ("POST", "/v1/embeddings"): functools.partial(embeddings, default_dim=embedding_dim),
        }

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: Connection(self), host, port, backlog=1024)
        self._host = host
        self._port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        tasks = [task for conn in list(self.connections) if (task := conn.shutdown()) is not None]
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

    def stats(self) -> Json:
        return {
            "disconnects": self.disconnects,
            "completed_streams": self.completed_streams,
            "requests": self.request_count,
        }

    # -- called by fake_http.Connection ---------------------------------------------------------

    def dispatch(self, request: Request) -> Reply:
        """The reply to one complete request."""
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
        except RequestError as err:
            return self.error_reply(err)

    def error_reply(self, err: RequestError) -> Reply:
        return Reply(err.status, self._encode(err.body()), headers=err.headers)

    # -- routing and replies ----------------------------------------------------------------------

    def _route(self, method: str, path: str, body: Any) -> Reply:
        endpoint = self._routes.get((method, path))
        if endpoint is not None:
            if body is _MALFORMED:
                raise RequestError(400, "We could not parse the JSON body of your request.")
            return self._deliver(endpoint(body, next(self._seq), self._behaviour))
        if method == "GET" and path == "/v1/models":
            return self._json(model_list(self.models))
        if method == "GET" and path.startswith("/v1/models/") and len(path) > len("/v1/models/"):
            return self._json(model_object(unquote(path[len("/v1/models/") :])))
        raise RequestError(404, f"Invalid URL ({method} {path})", code="unknown_url")

    def _introspect(self, method: str, path: str) -> Reply:
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
        return self.error_reply(RequestError(404, f"Invalid URL ({method} {path})", code="unknown_url"))

    def _json(self, payload: Any, status: int = 200) -> Reply:
        return Reply(status, self._encode(payload))

    def _deliver(self, answer: Answer) -> Reply:
        """Encode an endpoint's answer, applying the markers of the requested model."""
        behaviour = answer.behaviour
        if behaviour.error_status is not None:
            reply = self.error_reply(marker_error(behaviour.error_status))
        elif answer.chunks is not None:
            reply = self._stream(answer.chunks, behaviour)
        else:
            reply = self._json(answer.payload)
        reply.delay = behaviour.slow_ms / 1000
        reply.hang = behaviour.hang
        return reply

    def _stream(self, chunks: Iterator[Json], behaviour: Behaviour) -> Reply:
        if behaviour.not_sse:
            return self._json({"id": "not-a-stream", "object": "chat.completion", "choices": []})
        encode = self._encode
        events: Iterator[bytes] = (b"data: " + encode(chunk) + b"\n\n" for chunk in chunks)
        reply = Reply(200, chunk_delay=behaviour.chunk_delay_ms / 1000, headers=SSE_HEADERS)
        if behaviour.stream_error:
            reply.events, reply.abort = itertools.islice(events, STREAM_ERROR_EVENTS), True
        elif behaviour.no_done:
            reply.events = events
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
