"""A deterministic, fast fake of Google's Gemini API (`generativelanguage`, v1beta) for tests.

Built on the same HTTP/1.1 layer as the other fakes (`fake_http`): this module is the server
(routing, headers, recording) and `fake_gemini_replies` builds the answers.

`POST /v1beta/models/<model>:generateContent` needs an `x-goog-api-key` header or a `key` query
parameter (else 403 PERMISSION_DENIED, as Gemini answers a call without one) and a minimally valid
body (else 400 INVALID_ARGUMENT; unknown top-level fields are refused, as Gemini does). It answers
"This is a fake reply from Gemini." cut to `generationConfig.maxOutputTokens` words (finishReason
MAX_TOKENS when cut), or, when the request declares functions and the last turn is user text, a
`functionCall` of the first (or first allowed) function with args {"query": "fake"}.
`:streamGenerateContent?alt=sse` sends the same reply as SSE chunks, one per word, usage in each
and the finishReason in the last; without `alt=sse` it answers the chunks as one JSON array.
`:batchEmbedContents` answers deterministic unit vectors.

Markers in the model name: `slow-<ms>` (delay before headers), `chunkdelay-<ms>` (between stream
chunks), `error-<status>` (that status in Gemini's error shape; 429 carries a RetryInfo of 1s),
`hang` and `tokens-<p>-<c>` (fixed usage, a reply of exactly <c> words).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections import deque
from typing import Any
from urllib.parse import parse_qs, unquote

import msgspec

from gateway.testing.fake_gemini_replies import answer, embeddings, error_body, marker_error, sse_chunk, validate
from gateway.testing.fake_http import Connection, Reply, Request
from gateway.testing.fake_markers import parse_behaviour
from gateway.testing.fake_upstream import RecordedRequest
from gateway.testing.fake_validation import RequestError

MAX_RECORDED = 1000
SSE_HEADERS = (("cache-control", "no-cache"),)
PREFIX = "/v1beta/models/"
_MALFORMED = object()  # sentinel: the body was present but not JSON


class FakeGemini:
    """A Gemini API server with deterministic answers (see the module docstring)."""

    def __init__(self, *, record: bool = True) -> None:
        self.record = record
        self.disconnects = 0
        self.completed_streams = 0
        self.request_count = 0
        self.connections: set[Connection] = set()  # maintained by the connections themselves
        self._recorded: deque[RecordedRequest] = deque(maxlen=MAX_RECORDED)
        self._server: asyncio.Server | None = None
        self._host = "127.0.0.1"
        self._port = 0
        self._seq = itertools.count(1)
        self._behaviour = functools.lru_cache(maxsize=1024)(parse_behaviour)
        self._decode = msgspec.json.Decoder().decode
        self._encode = msgspec.json.Encoder().encode

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

    async def __aenter__(self) -> FakeGemini:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeGemini is not started")
        return self._port

    @property
    def base_url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}/v1beta"

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the last `MAX_RECORDED` requests, oldest first."""
        return list(self._recorded)

    def clear_requests(self) -> None:
        self._recorded.clear()
        self.request_count = 0

    # -- called by fake_http.Connection ---------------------------------------------------------

    def dispatch(self, request: Request) -> Reply:
        """The reply to one complete request."""
        raw_path, _, raw_query = request.target.partition(b"?")
        path, query = unquote(raw_path.decode("latin-1")), raw_query.decode("latin-1")
        self.request_count += 1
        try:
            body = self._decode(request.body) if request.body else None
        except msgspec.DecodeError:
            body = _MALFORMED
        if self.record:
            recorded_body = None if body is _MALFORMED else body
            self._recorded.append(RecordedRequest(request.method, path, query, request.headers, recorded_body))
        try:
            return self._route(request, path, parse_qs(query), body)
        except RequestError as err:
            return self.error_reply(err)

    def error_reply(self, err: RequestError) -> Reply:
        return Reply(err.status, self._encode(error_body(err)), headers=err.headers)

    # -- routing and replies ----------------------------------------------------------------------

    def _route(self, request: Request, path: str, query: dict[str, list[str]], body: Any) -> Reply:
        model, _, method = path.removeprefix(PREFIX).rpartition(":")
        known = ("generateContent", "streamGenerateContent", "batchEmbedContents")
        if request.method != "POST" or not path.startswith(PREFIX) or not model or method not in known:
            raise RequestError(404, f"Not found: {request.method} {path}")
        if not request.headers.get("x-goog-api-key") and not query.get("key"):
            raise RequestError(403, "The caller has no API key; pass one in the x-goog-api-key header.")
        if body is _MALFORMED:
            raise RequestError(400, "Invalid JSON payload received.")
        behaviour = self._behaviour(model)
        if behaviour.error_status is not None:
            reply = self.error_reply(marker_error(behaviour.error_status))
        elif method == "batchEmbedContents":
            reply = Reply(200, self._encode(embeddings(body, model)))
        else:
            result = answer(validate(body), model, next(self._seq), behaviour)
            if method == "generateContent":
                reply = Reply(200, self._encode(result.response()))
            elif query.get("alt") == ["sse"]:
                reply = Reply(200, events=(sse_chunk(chunk) for chunk in result.chunks()), headers=SSE_HEADERS)
                reply.chunk_delay = behaviour.chunk_delay_ms / 1000
            else:
                reply = Reply(200, self._encode(list(result.chunks())))
        reply.delay = behaviour.slow_ms / 1000
        reply.hang = behaviour.hang
        return reply
