"""A small Redis client for the quota step: one connection, many requests in flight on it.

Measured (tests/bench/quota_step.py): redis-py's asyncio client spent about 0.4 ms of CPU per
script call and topped out near 2,600 calls/s on one event loop, most of it in its connection
pool and command packing. Redis answers a connection's commands in order, so one connection can
carry every concurrent request: each call writes its command and waits for the next reply in
line. The replies are parsed by hiredis. A call that times out poisons the order of replies, so
the connection is dropped and the next call opens a new one (as after an error reply saying the
server cannot serve writes: a failed-over replica).
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import Any
from urllib.parse import unquote, urlsplit

import hiredis

_CONNECT_SECONDS = 2.0


class RespError(Exception):
    """Redis answered with an error reply (a script error, NOSCRIPT, wrong password...)."""


class ConnectionLost(Exception):
    pass


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self._reader = hiredis.Reader(replyError=RespError)
        self.waiters: deque[asyncio.Future[Any]] = deque()
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while (reply := self._reader.gets()) is not False:
            waiter = self.waiters.popleft()
            if not waiter.done():  # its caller may have given up; the reply is still its own
                if isinstance(reply, RespError):
                    waiter.set_exception(reply)
                else:
                    waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(ConnectionLost(str(exc or "connection closed")))


def _pack(args: tuple[Any, ...]) -> bytes:
    """One command in RESP. Packing is a visible share of the quota step's CPU (py-spy under
    load), hence the direct int formatting rather than going through str."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, int):
            data = b"%d" % arg
        else:
            data = str(arg).encode()
        out.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(out)


class RespClient:
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError(f"unsupported Redis URL scheme {parts.scheme!r}")
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 6379
        self._ssl = ssl.create_default_context() if parts.scheme == "rediss" else None
        self._username = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self._db = int(parts.path.lstrip("/") or 0)
        self._conn: _Protocol | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None

    async def call(self, *args: Any) -> Any:
        conn = await self._connection()
        assert conn.transport is not None
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        conn.waiters.append(waiter)
        conn.transport.write(_pack(args))
        return await waiter  # a caller that gives up leaves its waiter in line: replies stay aligned

    async def ping(self, seconds: float) -> bool:
        try:
            async with asyncio.timeout(seconds):
                await self.call("PING")
        except Exception:  # refused, reset, timed out: the caller only asks whether it answers
            self.drop()  # a reply still on its way would no longer line up with its caller
            return False
        return True

    def drop(self) -> None:
        """Close the connection (after a timeout): replies may no longer line up with callers."""
        if self._conn is not None and self._conn.transport is not None:
            self._conn.transport.abort()
        self._conn = None

    async def _connection(self) -> _Protocol:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        if self._connecting is None:  # one connect for all the callers waiting on it
            self._connecting = asyncio.ensure_future(self._connect())
        try:
            self._conn = await asyncio.shield(self._connecting)
        finally:
            if self._connecting is not None and self._connecting.done():
                self._connecting = None
        return self._conn

    async def _connect(self) -> _Protocol:
        async with asyncio.timeout(_CONNECT_SECONDS):  # a server that accepts but never answers
            return await self._open()

    async def _open(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(_Protocol, self._host, self._port, ssl=self._ssl)
        assert conn.transport is not None
        try:
            await self._setup(conn)
        except BaseException:
            conn.transport.abort()  # a refused AUTH or SELECT must not leave the socket open
            raise
        return conn

    async def _setup(self, conn: _Protocol) -> None:
        assert conn.transport is not None
        loop = asyncio.get_running_loop()
        setup: list[tuple[Any, ...]] = []
        if self._password is not None:
            setup.append(("AUTH", self._username, self._password) if self._username else ("AUTH", self._password))
        if self._db:
            setup.append(("SELECT", self._db))
        for command in setup:
            waiter: asyncio.Future[Any] = loop.create_future()
            conn.waiters.append(waiter)
            conn.transport.write(_pack(command))
            await waiter

    async def aclose(self) -> None:
        self.drop()
