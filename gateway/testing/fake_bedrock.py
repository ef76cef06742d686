"""A deterministic, fast fake of Amazon Bedrock Runtime (Converse, ConverseStream, Titan embeddings).

Built on the same HTTP/1.1 layer as the other fakes (`fake_http`): this module is the server
(routing, headers, recording) and `fake_bedrock_replies` builds the answers and the frames.

Every request needs a SigV4-looking `authorization` header (`AWS4-HMAC-SHA256 Credential=...`)
and an `x-amz-date` header, else 403 AccessDeniedException; the signature itself is not checked.
`POST /model/<id>/converse` needs a minimally valid Converse body (else 400 ValidationException;
unknown top-level fields, blank text blocks and non-alternating roles are refused, as Bedrock
does). It answers "This is a fake reply from Bedrock." cut to `inferenceConfig.maxTokens` words
(stopReason max_tokens when cut), or, when the request has a toolConfig and the last turn is user
text, a `toolUse` of the first (or the chosen) tool with input {"query": "fake"}.
`/model/<id>/converse-stream` sends the same reply as binary event-stream frames
(`application/vnd.amazon.eventstream`): messageStart, one contentBlockDelta per word (a tool call:
contentBlockStart, then its input in two pieces), contentBlockStop, messageStop, metadata.
`/model/<id>/invoke` answers a Titan text embedding for `{"inputText": ...}`.

Errors are Bedrock's: a `{"message": ...}` body and the exception's name in `x-amzn-ErrorType`.
Markers in the model id: `slow-<ms>` (delay before headers), `chunkdelay-<ms>` (between stream
frames), `error-<status>` (that status; 429 is a ThrottlingException, 503 ServiceUnavailable),
`hang`, `tokens-<p>-<c>` (fixed usage, a reply of exactly <c> words) and `streamerror` (an
internalServerException event after the first delta).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections import deque
from typing import Any
from urllib.parse import unquote

import msgspec

from gateway.testing.fake_bedrock_replies import answer, error_headers, marker_error, titan_embedding, validate
from gateway.testing.fake_http import Connection, Reply, Request, response_head
from gateway.testing.fake_markers import parse_behaviour
from gateway.testing.fake_upstream import RecordedRequest
from gateway.testing.fake_validation import RequestError

MAX_RECORDED = 1000
EVENT_STREAM = "application/vnd.amazon.eventstream"
SIGV4_PREFIX = "AWS4-HMAC-SHA256 Credential="
_METHODS = ("converse", "converse-stream", "invoke")
_MALFORMED = object()  # sentinel: the body was present but not JSON


class _EventStreamConnection(Connection):
    """A `fake_http` connection whose streams are AWS event streams rather than SSE."""

    def _stream_head(self, request: Request, reply: Reply) -> bytes:
        framing = "transfer-encoding: chunked" if request.http11 else ""
        keep_alive = request.keep_alive and request.http11
        return response_head(reply.status, EVENT_STREAM, framing, keep_alive, reply.headers)


class FakeBedrock:
    """A Bedrock Runtime server with deterministic answers (see the module docstring)."""

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
        self._server = await loop.create_server(lambda: _EventStreamConnection(self), host, port, backlog=1024)
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

    async def __aenter__(self) -> FakeBedrock:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeBedrock is not started")
        return self._port

    @property
    def base_url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

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
        # Split before unquoting: a model id may be an ARN, with an encoded "/" inside.
        segments = [unquote(part) for part in raw_path.decode("latin-1").split("/")]
        self.request_count += 1
        try:
            body = self._decode(request.body) if request.body else None
        except msgspec.DecodeError:
            body = _MALFORMED
        if self.record:
            recorded_body = None if body is _MALFORMED else body
            path = "/".join(segments)
            query = raw_query.decode("latin-1")
            self._recorded.append(RecordedRequest(request.method, path, query, request.headers, recorded_body))
        try:
            return self._route(request, segments, body)
        except RequestError as err:
            return self.error_reply(err)

    def error_reply(self, err: RequestError) -> Reply:
        return Reply(err.status, self._encode({"message": err.message}), headers=error_headers(err))

    # -- routing and replies ----------------------------------------------------------------------

    def _route(self, request: Request, segments: list[str], body: Any) -> Reply:
        if (
            request.method != "POST"
            or len(segments) != 4
            or segments[:2] != ["", "model"]
            or not segments[2]
            or segments[3] not in _METHODS
        ):
            raise RequestError(404, f"Not found: {request.method} {'/'.join(segments)}")
        headers = request.headers
        if not headers.get("authorization", "").startswith(SIGV4_PREFIX) or not headers.get("x-amz-date"):
            raise RequestError(403, "Missing Authentication Token")
        if body is _MALFORMED:
            raise RequestError(400, "Malformed input request, please reformat your input and try again.")
        model, method = segments[2], segments[3]
        behaviour = self._behaviour(model)
        if behaviour.error_status is not None:
            reply = self.error_reply(marker_error(behaviour.error_status))
        elif method == "invoke":
            reply = Reply(200, self._encode(titan_embedding(body)))
        else:
            result = answer(validate(body), next(self._seq), behaviour)
            if method == "converse":
                reply = Reply(200, self._encode(result.response()))
            else:
                reply = Reply(200, events=result.events(fail=behaviour.stream_error))
                reply.chunk_delay = behaviour.chunk_delay_ms / 1000
        reply.delay = behaviour.slow_ms / 1000
        reply.hang = behaviour.hang
        return reply
