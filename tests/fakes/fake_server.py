"""The server plumbing shared by the fake upstreams (OpenAI, Azure, Anthropic, Gemini, Bedrock).

`FakeServer` owns what does not depend on the API being faked: starting and stopping the listener
(also as `async with`), `port` / `root_url` / `base_url`, the counters `fake_http` connections
maintain, decoding and recording each request, and turning a `RequestError` into an error reply.
A subclass keeps only its routes and the building of its replies: it implements `_route`, and
overrides `error_reply` when its API shapes errors differently. `run_cli` is the shared
`python -m ...` entry point.
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
from dataclasses import dataclass
from typing import Any, ClassVar, Self, cast
from urllib.parse import unquote

import msgspec

from fakes.fake_http import Connection, Reply, Request
from fakes.fake_markers import Behaviour, flaky_phase, parse_behaviour
from fakes.fake_validation import Json, RequestError

MAX_RECORDED = 1000
SSE_HEADERS = (("cache-control", "no-cache"),)
MALFORMED: Any = object()  # sentinel body: the body was present but not JSON


@dataclass(slots=True)
class RecordedRequest:
    """One request as the fake received it, for tests to check what the gateway sent upstream."""

    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-case names
    body: Any  # parsed JSON, or None when the body was empty or not JSON


class FakeServer:
    """A fake HTTP API server on `fake_http`; subclasses implement `_route` (see the module docstring)."""

    _name: ClassVar[str] = "FakeServer"  # for the "... is not started" error
    _base_path: ClassVar[str] = ""  # appended to `root_url` to make `base_url`
    _unquote_recorded_path: ClassVar[bool] = False  # record the percent-decoded path
    _connection_class: ClassVar[type[Connection]] = Connection

    def __init__(self, *, record: bool = True) -> None:
        self.record = record
        self.disconnects = 0
        self.abandoned = 0
        self.completed_streams = 0
        self.request_count = 0
        self.connections: set[Connection] = set()  # maintained by the connections themselves
        self._recorded: deque[RecordedRequest] = deque(maxlen=MAX_RECORDED)
        self._server: asyncio.Server | None = None
        self._host = "127.0.0.1"
        self._port = 0
        self._seq = itertools.count(1)
        # Per instance and bounded: benchmarks send the same few model names millions of times.
        self._parsed = functools.lru_cache(maxsize=1024)(parse_behaviour)
        self._flaky_seen: dict[str, int] = {}  # requests so far per `flaky-<n>` model (lower-cased)
        self._decode = msgspec.json.Decoder().decode
        self._encode = msgspec.json.Encoder().encode

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        loop = asyncio.get_running_loop()
        connection_class = self._connection_class
        self._server = await loop.create_server(lambda: connection_class(self), host, port, backlog=1024)
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

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{self._name} is not started")
        return self._port

    @property
    def root_url(self) -> str:
        """`http://host:port`, with no path."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.root_url + self._base_path

    # -- recording and counters -------------------------------------------------------------------

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
        self.abandoned = 0
        self.completed_streams = 0
        self._flaky_seen.clear()

    def stats(self) -> Json:
        return {
            "disconnects": self.disconnects,
            "abandoned": self.abandoned,
            "completed_streams": self.completed_streams,
            "requests": self.request_count,
        }

    # -- called by fake_http.Connection ---------------------------------------------------------

    def dispatch(self, request: Request) -> Reply:
        """The reply to one complete request (the OpenAI fake's hot path: keep it lean)."""
        raw_path, _, raw_query = request.target.partition(b"?")
        path, query = raw_path.decode("latin-1"), raw_query.decode("latin-1")
        if path.startswith("/_fake/") and (reply := self._introspect(request.method, path)) is not None:
            return reply
        self.request_count += 1
        try:
            body = self._decode(request.body) if request.body else None
        except msgspec.DecodeError:
            body = MALFORMED
        if self.record:
            recorded_body = None if body is MALFORMED else body
            recorded_path = unquote(path) if self._unquote_recorded_path else path
            self._recorded.append(RecordedRequest(request.method, recorded_path, query, request.headers, recorded_body))
        try:
            return self._route(request, path, query, body)
        except RequestError as err:
            return self.error_reply(err)

    def error_reply(self, err: RequestError) -> Reply:
        return Reply(err.status, self._encode(err.body()), headers=err.headers)

    # -- for subclasses ---------------------------------------------------------------------------

    def _route(self, request: Request, path: str, query: str, body: Any) -> Reply:
        """The reply to a request; `path` and `query` as sent, `body` parsed JSON, None or `MALFORMED`."""
        raise NotImplementedError

    def _introspect(self, method: str, path: str) -> Reply | None:
        """The reply to a `/_fake/...` request, or None to route it like any other."""
        return None

    def _json(self, payload: Any, status: int = 200) -> Reply:
        return Reply(status, self._encode(payload))

    def _behaviour(self, model: str) -> Behaviour:
        """The markers of `model` for this request; call it once per request, as it counts `flaky-<n>` ones."""
        behaviour = self._parsed(model)
        if behaviour.flaky is None:
            return behaviour
        name, failures = behaviour.flaky
        seen = self._flaky_seen[name] = self._flaky_seen.get(name, 0) + 1
        return flaky_phase(behaviour, failing=seen <= failures)

    @staticmethod
    def _timed(reply: Reply, behaviour: Behaviour) -> Reply:
        """`reply` with the `slow-<ms>`, `firstbyte-<ms>`, `hang` and `hangstream` markers applied."""
        reply.delay = behaviour.slow_ms / 1000
        reply.first_byte_delay = behaviour.first_byte_ms / 1000
        reply.hang = behaviour.hang
        reply.stall = behaviour.hang_stream
        return reply


# -- command line ----------------------------------------------------------------------------------


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return cast(Callable[[], asyncio.AbstractEventLoop], uvloop.new_event_loop)


async def _serve_forever(fake: FakeServer, label: str, host: str, port: int) -> None:
    await fake.start(host, port)
    current = asyncio.current_task()
    if current is not None:  # SIGTERM ends the process as cleanly as Ctrl-C does
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, current.cancel)
    print(f"{label} listening on http://{host}:{fake.port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


def run_cli(
    factory: Callable[[bool], FakeServer],
    *,
    prog: str,
    description: str,
    default_port: int,
    label: str,
    argv: list[str] | None = None,
) -> None:
    """`python -m <prog> [--host H] [--port P] [--no-record]`: serve `factory(record)` until stopped."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=default_port)
    parser.add_argument("--no-record", action="store_true", help="do not record requests (benchmarks)")
    args = parser.parse_args(argv)
    fake = factory(not args.no_record)
    with (
        contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError),
        asyncio.Runner(loop_factory=_loop_factory()) as runner,
    ):
        runner.run(_serve_forever(fake, label, args.host, args.port))
