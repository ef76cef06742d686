"""A deterministic, fast fake of Anthropic's Messages API for tests and benchmarks.

Built on the same HTTP/1.1 layer as the OpenAI-compatible fake (`fake_http`): this module is the
server (routing, headers, recording) and `fake_anthropic_events` builds the answers.

`POST /v1/messages` needs `x-api-key` or a bearer `authorization` (else 401 authentication_error),
`anthropic-version` (else 400) and a minimally valid body (else 400 invalid_request_error). It answers the fixed text
"This is a fake reply from Anthropic." cut to `max_tokens` words (stop_reason "max_tokens" when
cut), or, when the request has `tools` and the last user turn is not a tool_result, a short text
then a `tool_use` block for the first tool with input {"query": "fake"}. With `"stream": true` it
sends Anthropic's SSE event sequence. `POST /v1/messages/count_tokens` counts the input words.

Markers in the model name: `slow-<ms>` (delay before headers), `chunkdelay-<ms>` (between stream
events), `error-<status>` (that status in Anthropic's error shape; 429 adds `retry-after: 1`),
`hang`, `tokens-<in>-<out>` (fixed usage, a reply of exactly <out> words) and `cache-<read>-<write>`
(cache_read_input_tokens / cache_creation_input_tokens).

Run standalone with `python -m gateway.testing.fake_anthropic --port 9200 [--no-record]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import itertools
import signal
from collections import deque
from collections.abc import Callable
from typing import Any, cast

import msgspec

from gateway.testing.fake_anthropic_events import answer, error_body, input_tokens, marker_error, sse_event, validate
from gateway.testing.fake_http import Connection, Reply, Request
from gateway.testing.fake_markers import parse_behaviour
from gateway.testing.fake_upstream import RecordedRequest
from gateway.testing.fake_validation import Json, RequestError

MAX_RECORDED = 1000
SSE_HEADERS = (("cache-control", "no-cache"),)
_MALFORMED = object()  # sentinel: the body was present but not JSON


def _has_credentials(headers: dict[str, str]) -> bool:
    """An `x-api-key`, or a bearer token (which recent `anthropic` SDKs send the API key as)."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return bool(headers.get("x-api-key")) or (scheme.lower() == "bearer" and bool(token.strip()))


class FakeAnthropic:
    """An Anthropic Messages API server with deterministic answers (see the module docstring)."""

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

    async def __aenter__(self) -> FakeAnthropic:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeAnthropic is not started")
        return self._port

    @property
    def root_url(self) -> str:
        """The URL to give the `anthropic` SDK, which appends `/v1/messages` itself."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.root_url + "/v1"

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

    # -- called by fake_http.Connection ---------------------------------------------------------

    def dispatch(self, request: Request) -> Reply:
        """The reply to one complete request."""
        raw_path, _, raw_query = request.target.partition(b"?")
        path, query = raw_path.decode("latin-1"), raw_query.decode("latin-1")
        self.request_count += 1
        try:
            body = self._decode(request.body) if request.body else None
        except msgspec.DecodeError:
            body = _MALFORMED
        if self.record:
            recorded_body = None if body is _MALFORMED else body
            self._recorded.append(RecordedRequest(request.method, path, query, request.headers, recorded_body))
        try:
            return self._route(request, path, body)
        except RequestError as err:
            return self.error_reply(err)

    def error_reply(self, err: RequestError) -> Reply:
        request_id = f"req_fake_{self.request_count}"
        headers = (("request-id", request_id), *err.headers)
        return Reply(err.status, self._encode(error_body(err, request_id)), headers=headers)

    # -- routing and replies ----------------------------------------------------------------------

    def _route(self, request: Request, path: str, body: Any) -> Reply:
        if request.method != "POST" or path not in ("/v1/messages", "/v1/messages/count_tokens"):
            raise RequestError(404, f"Not found: {request.method} {path}")
        if not _has_credentials(request.headers):
            raise RequestError(401, "x-api-key header is required")
        if not request.headers.get("anthropic-version"):
            raise RequestError(400, "anthropic-version: header is required")
        if body is _MALFORMED:
            raise RequestError(400, "The request body is not valid JSON.")
        if path == "/v1/messages/count_tokens":
            return self._count_tokens(body)
        return self._messages(validate(body))

    def _count_tokens(self, body: Any) -> Reply:
        if not isinstance(body, dict):
            raise RequestError(400, "The request body must be a JSON object.")
        validate({"max_tokens": 1, **body})  # count_tokens takes no max_tokens
        return self._json({"input_tokens": input_tokens(body)})

    def _messages(self, body: Json) -> Reply:
        behaviour = self._behaviour(body["model"])
        if behaviour.error_status is not None:
            reply = self.error_reply(marker_error(behaviour.error_status))
        else:
            result = answer(body, next(self._seq), behaviour)
            if body.get("stream") is True:
                events = (sse_event(kind, data) for kind, data in result.events())
                reply = Reply(200, events=events, headers=(*SSE_HEADERS, self._request_id()))
                reply.chunk_delay = behaviour.chunk_delay_ms / 1000
            else:
                reply = self._json(result.message())
        reply.delay = behaviour.slow_ms / 1000
        reply.hang = behaviour.hang
        return reply

    def _request_id(self) -> tuple[str, str]:
        return ("request-id", f"req_fake_{self.request_count}")

    def _json(self, payload: Any, status: int = 200) -> Reply:
        return Reply(status, self._encode(payload), headers=(self._request_id(),))


# -- command line ----------------------------------------------------------------------------------


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m gateway.testing.fake_anthropic",
        description="Deterministic fake of Anthropic's Messages API.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9200)
    parser.add_argument("--no-record", action="store_true", help="do not record requests (benchmarks)")
    return parser.parse_args(argv)


async def _serve_forever(args: argparse.Namespace) -> None:
    fake = FakeAnthropic(record=not args.no_record)
    await fake.start(args.host, args.port)
    current = asyncio.current_task()
    if current is not None:  # SIGTERM ends the process as cleanly as Ctrl-C does
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, current.cancel)
    print(f"fake-anthropic listening on http://{args.host}:{fake.port}", flush=True)
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
