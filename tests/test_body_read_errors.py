"""A request body that never arrives whole, sent over a raw socket: the client leaving mid-body is
recorded as 499, a body that breaks HTTP's chunked framing is answered and recorded as a 400."""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import urlsplit

import pytest
from harness import Gateway

from gateway.db.models import UsageRecord


async def _connect(gateway: Gateway) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    url = urlsplit(gateway.base_url)
    assert url.hostname is not None and url.port is not None
    return await asyncio.open_connection(url.hostname, url.port)


def _head(path: str, secret: str, framing: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nhost: gateway\r\nauthorization: Bearer {secret}\r\n"
        f"x-api-key: {secret}\r\ncontent-type: application/json\r\n{framing}\r\n\r\n"
    ).encode()


async def _rows_of(gateway: Gateway, key_id: int) -> list[UsageRecord]:
    """The key's ledger rows, once there are any: the handler records when it sees the client gone."""
    deadline = time.monotonic() + 60
    for _ in range(100_000):
        rows = await gateway.usage_rows_where(key_id=key_id)
        if rows or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.05)
    raise AssertionError("unreachable")


async def test_a_client_leaving_mid_body_is_recorded_as_499(gateway: Gateway) -> None:
    created = await gateway.runtime.keys.create("leaves-mid-body")
    _, writer = await _connect(gateway)
    writer.write(_head("/v1/chat/completions", created.secret, "content-length: 1000") + b'{"model": "chat-model"')
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    rows = await _rows_of(gateway, created.key.id)
    assert [(row.status_code, row.error_type, row.endpoint) for row in rows] == [
        (499, "ClientDisconnected", "chat.completions")
    ]


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
async def test_a_malformed_chunked_body_is_a_400_in_the_apis_shape(gateway: Gateway, path: str) -> None:
    created = await gateway.runtime.keys.create("malformed-chunks")
    reader, writer = await _connect(gateway)
    writer.write(_head(path, created.secret, "transfer-encoding: chunked") + b'6\r\n{"mode\r\n')
    await writer.drain()
    writer.write(b"zz\r\nnot a chunk size\r\n")  # the next chunk's size is not hexadecimal
    await writer.drain()
    answer = await reader.read()  # the gateway closes the connection after its answer
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    assert lines[0] == "HTTP/1.1 400 Bad Request" and headers["content-type"] == "application/json"
    document = json.loads(body)
    if path == "/v1/messages":
        assert document["type"] == "error" and document["error"]["type"] == "invalid_request_error"
        assert "malformed chunk" in document["error"]["message"]
    else:
        error = document["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"
        assert "malformed chunk" in error["message"]
    row = await gateway.usage(headers["x-request-id"])
    assert (row.status_code, row.error_type, row.key_id) == (400, "InvalidRequest", created.key.id)
