"""Load generator for ``tests/bench/run.py``; runs as its own process and prints one JSON object.

``rate``:   open loop. Requests are issued on a fixed schedule (``--rate`` per second) whether or
            not earlier ones have finished, over a pool of keep-alive connections that grows when
            every connection is busy. Latency runs from the moment a request is issued to the last
            byte of its response; ``lag`` is how late the scheduler issued requests (if it grows,
            this process, not the target, was the bottleneck).
``stream``: streaming probe. Sequential requests on one keep-alive connection, then a batch at a
            fixed concurrency; for each, the time to the first body bytes (TTFB) and to the last.

The client is a minimal HTTP/1.1 implementation on asyncio streams (Content-Length and chunked
responses), so that the generator costs little CPU and its timings are not an HTTP library's.
The request (URL, headers, JSON body) comes from a spec file written by ``run.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REQUEST_TIMEOUT_SECONDS = 30.0
PREOPENED_CONNECTIONS = 4
WARMUP_STREAMS = 5
RETRYABLE = (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError)


@dataclass(frozen=True, slots=True)
class RequestSpec:
    host: str
    port: int
    raw: bytes  # the whole HTTP/1.1 request, sent as is every time

    @classmethod
    def load(cls, path: str) -> RequestSpec:
        data = json.loads(Path(path).read_text())
        url = urlsplit(data["url"])
        body = data["body"].encode()
        lines = [
            f"POST {url.path} HTTP/1.1",
            f"Host: {url.netloc}",
            f"Content-Length: {len(body)}",
            *(f"{name}: {value}" for name, value in data["headers"].items()),
        ]
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        return cls(url.hostname or "127.0.0.1", url.port or 80, raw)


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    first_byte: float  # perf_counter() once the first body bytes were read
    keep_alive: bool


async def read_response(reader: asyncio.StreamReader) -> Response:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(head[0].split(" ", 2)[1])
    headers: dict[str, str] = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip().lower()
    if headers.get("transfer-encoding") == "chunked":
        first = await _read_chunked(reader)
    else:
        first = time.perf_counter()
        await reader.readexactly(int(headers.get("content-length", "0")))
    return Response(status, first, headers.get("connection") != "close")


async def _read_chunked(reader: asyncio.StreamReader) -> float:
    first: float | None = None
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # optional trailers
                pass
            return first if first is not None else time.perf_counter()
        await reader.readexactly(size + 2)
        if first is None:
            first = time.perf_counter()


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def exchange(self, raw: bytes) -> Response:
        self.writer.write(raw)
        try:
            return await read_response(self.reader)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self.writer.close()


class Pool:
    """Keep-alive connections to one server; opens a new one whenever none is idle."""

    def __init__(self, spec: RequestSpec, limit: int) -> None:
        self.spec = spec
        self.idle: list[Connection] = []
        self.slots = asyncio.Semaphore(limit)
        self.opened = 0

    async def fill(self, count: int) -> None:
        for _ in range(count):
            self.idle.append(await self._open())

    async def _open(self) -> Connection:
        self.opened += 1
        return await Connection.open(self.spec.host, self.spec.port)

    async def exchange(self) -> Response:
        async with self.slots:
            reused = bool(self.idle)
            conn = self.idle.pop() if reused else await self._open()
            try:
                response = await conn.exchange(self.spec.raw)
            except RETRYABLE:
                if not reused:
                    raise
                conn = await self._open()  # the server had closed the idle connection: retry once
                response = await conn.exchange(self.spec.raw)
            if response.keep_alive:
                self.idle.append(conn)
            else:
                conn.close()
            return response

    def close(self) -> None:
        for conn in self.idle:
            conn.close()
        self.idle.clear()


@dataclass
class Samples:
    latency: list[float] = field(default_factory=list)
    lag: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    sent: int = 0
    elapsed: float = 0.0


def summary_ms(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)

    def pick(p: float) -> float | None:
        if not ordered:
            return None
        return round(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] * 1000, 3)

    return {"p50_ms": pick(50), "p90_ms": pick(90), "p99_ms": pick(99), "max_ms": pick(100)}


async def _exchange_ok(pool: Pool, errors: Counter[str]) -> tuple[Response, float] | None:
    """One request under the timeout: its 200 response and the time it ended, or None with the
    failure (exception name or `HTTP <status>`) counted in `errors`."""
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
            response = await pool.exchange()
    except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
        errors[type(exc).__name__] += 1
        return None
    end = time.perf_counter()
    if response.status != 200:
        errors[f"HTTP {response.status}"] += 1
        return None
    return response, end


async def _timed_request(pool: Pool, due: float, samples: Samples) -> None:
    issued = time.perf_counter()
    samples.lag.append(issued - due)
    done = await _exchange_ok(pool, samples.errors)
    if done is not None:
        samples.latency.append(done[1] - issued)


async def open_loop(pool: Pool, rate: float, duration: float) -> Samples:
    samples = Samples()
    count = max(1, round(rate * duration))
    tasks: list[asyncio.Task[None]] = []
    start = time.perf_counter() + 0.01
    for index in range(count):
        due = start + index / rate
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        tasks.append(asyncio.create_task(_timed_request(pool, due, samples)))
    await asyncio.gather(*tasks)
    samples.sent = count
    samples.elapsed = time.perf_counter() - start
    return samples


async def run_rate(spec: RequestSpec, rate: float, duration: float, warmup: float, limit: int) -> dict[str, Any]:
    pool = Pool(spec, limit)
    try:
        await pool.fill(min(PREOPENED_CONNECTIONS, limit))
        warm = await open_loop(pool, rate, warmup) if warmup > 0 else Samples()
        samples = await open_loop(pool, rate, duration)
    finally:
        pool.close()
    ok = len(samples.latency)
    return {
        "offered_rps": rate,
        "sent": samples.sent,
        "ok": ok,
        "errors": dict(samples.errors),
        "achieved_rps": round(ok / samples.elapsed, 1) if samples.elapsed else 0.0,
        "latency": summary_ms(samples.latency),
        "lag": summary_ms(samples.lag),
        "connections": pool.opened,
        "warmup_sent": warm.sent,
    }


@dataclass
class StreamSamples:
    ttfb: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    def report(self) -> dict[str, Any]:
        return {
            "ok": len(self.total),
            "errors": dict(self.errors),
            "ttfb": summary_ms(self.ttfb),
            "last_byte": summary_ms(self.total),
        }


async def _stream_worker(pool: Pool, count: int, samples: StreamSamples) -> None:
    for _ in range(count):
        start = time.perf_counter()
        done = await _exchange_ok(pool, samples.errors)
        if done is None:
            continue
        response, end = done
        samples.ttfb.append(response.first_byte - start)
        samples.total.append(end - start)


async def _streams(pool: Pool, count: int, concurrency: int) -> StreamSamples:
    samples = StreamSamples()
    shares = [count // concurrency + (1 if i < count % concurrency else 0) for i in range(concurrency)]
    await asyncio.gather(*(_stream_worker(pool, share, samples) for share in shares if share))
    return samples


async def run_stream(spec: RequestSpec, count: int, concurrent: int, concurrency: int) -> dict[str, Any]:
    sequential_pool, concurrent_pool = Pool(spec, 1), Pool(spec, max(1, concurrency))
    try:
        await _streams(sequential_pool, WARMUP_STREAMS, 1)
        sequential = await _streams(sequential_pool, count, 1)
        result: dict[str, Any] = {"sequential": sequential.report(), "warmup_sent": WARMUP_STREAMS}
        if concurrent > 0 and concurrency > 0:
            await _streams(concurrent_pool, concurrency, concurrency)  # opens the connections
            result["concurrent"] = (await _streams(concurrent_pool, concurrent, concurrency)).report()
            result["concurrency"] = concurrency
            result["warmup_sent"] += concurrency
    finally:
        sequential_pool.close()
        concurrent_pool.close()
    return result


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    modes = parser.add_subparsers(dest="mode", required=True)
    rate = modes.add_parser("rate", help="open-loop requests at a fixed rate")
    rate.add_argument("--spec", required=True, help="request spec JSON (url, headers, body)")
    rate.add_argument("--rate", type=float, default=500.0, help="requests per second")
    rate.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    rate.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds at the same rate first")
    rate.add_argument("--max-connections", type=int, default=256)
    stream = modes.add_parser("stream", help="time to first and last byte of streamed responses")
    stream.add_argument("--spec", required=True, help="request spec JSON (url, headers, body)")
    stream.add_argument("--count", type=int, default=200, help="sequential requests")
    stream.add_argument("--concurrent", type=int, default=0, help="requests in the concurrent batch")
    stream.add_argument("--concurrency", type=int, default=16)
    return parser.parse_args(argv)


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    spec = RequestSpec.load(args.spec)
    if args.mode == "rate":
        return await run_rate(spec, args.rate, args.duration, args.warmup, args.max_connections)
    return await run_stream(spec, args.count, args.concurrent, args.concurrency)


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    try:
        import uvloop

        result = uvloop.run(_main(args))
    except ImportError:
        result = asyncio.run(_main(args))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
