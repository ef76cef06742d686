"""A TCP proxy a test can cut: the gateway's database (or Redis) as seen through a link that fails.

``cut()`` drops every open connection and refuses new ones (the port stops listening), as a
stopped server does; ``restore()`` listens again on the same port. Only the processes pointed at
the proxy see the outage, so the shared PostgreSQL the rest of the suite uses is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

_CHUNK = 65536


class TcpProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.Task[None]] = set()
        self._open: set[asyncio.WriteTransport] = set()
        self.port = 0

    async def __aenter__(self) -> TcpProxy:
        await self.restore()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.cut()

    async def restore(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
            self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        # Abort the sockets rather than cancel the link tasks: both pipes then end on their own, and
        # Python 3.11's stream callback does not log a traceback for each cancelled connection.
        for transport in list(self._open):
            transport.abort()
        await asyncio.gather(*self._links, return_exceptions=True)

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._links.add(task)
        self._open.add(client_writer.transport)
        try:
            server_reader, server_writer = await asyncio.open_connection(*self._target)
        except OSError:
            client_writer.transport.abort()
            self._open.discard(client_writer.transport)
            self._links.discard(task)
            return
        self._open.add(server_writer.transport)
        try:
            await asyncio.gather(_pipe(client_reader, server_writer), _pipe(server_reader, client_writer))
        finally:
            for writer in (client_writer, server_writer):
                with contextlib.suppress(Exception):
                    writer.transport.abort()
                self._open.discard(writer.transport)
            self._links.discard(task)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.transport.abort()
