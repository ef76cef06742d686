"""The TCP proxy the outage tests and ``tests/bench/db_outage.py`` cut: a cut drops open
connections and refuses new ones, quietly; a restore listens again on the same port."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fakes.tcp_proxy import TcpProxy


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data)
        await writer.drain()
    writer.close()


async def test_a_cut_drops_connections_without_loop_errors_and_restore_listens_again() -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    try:
        async with TcpProxy(server.sockets[0].getsockname()[1]) as proxy:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            writer.write(b"ping")
            assert await reader.readexactly(4) == b"ping"

            await proxy.cut()
            assert await reader.read() == b""  # the open connection is dropped
            with pytest.raises(OSError):
                await asyncio.open_connection("127.0.0.1", proxy.port)  # and new ones are refused
            writer.close()
            for _ in range(5):  # let the streams' done-callbacks run, where the loop would report
                await asyncio.sleep(0)
            assert reported == []

            await proxy.restore()
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            writer.write(b"pong")
            assert await reader.readexactly(4) == b"pong"
            writer.close()
    finally:
        server.close()
        loop.set_exception_handler(None)
