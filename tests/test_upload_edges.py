"""Audio uploads at their edges: a backend that answers before reading the upload, a client that
stalls or leaves, fields that come after the file, and forms built to cost memory before routing."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes.fake_media import TRANSCRIPT
from harness import Gateway, running_gateway
from test_media_endpoints import wav

BOUNDARY = "edge-boundary"


def form(*parts: tuple[str, bytes, str | None]) -> bytes:
    body = b""
    for name, value, filename in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"
    return body + f"--{BOUNDARY}--\r\n".encode()


HEADERS = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}


async def _post(gateway: Gateway, key: str, content: Any) -> httpx.Response:
    async with gateway.http() as http:
        return await http.post(
            "/v1/audio/transcriptions", headers={**HEADERS, "authorization": f"Bearer {key}"}, content=content
        )


async def test_text_format_after_the_file_is_still_metered(gateway: Gateway, key: str) -> None:
    body = form(("file", wav(3), "a.wav"), ("model", b"whisper-1", None), ("response_format", b"text", None))
    response = await _post(gateway, key, body)
    assert response.status_code == 200 and response.text == TRANSCRIPT + "\n"
    assert gateway.upstream.requests[-1].body["fields"]["response_format"] == "json"
    assert (await gateway.usage(response.headers["x-request-id"])).audio_ms == 3000


async def test_too_many_parts_before_routing_is_refused(gateway: Gateway, key: str) -> None:
    parts = [(f"f{i}", b"", None) for i in range(150)]
    response = await _post(gateway, key, form(*parts, ("model", b"whisper-1", None), ("file", b"x", "a.wav")))
    assert response.status_code == 400 and "more than 100 parts" in response.json()["error"]["message"]


async def test_speech_the_client_leaves_is_still_metered(gateway: Gateway, key: str) -> None:
    text = "A long sentence to speak slowly. " * 20
    async with gateway.http() as http:
        request = http.build_request(
            "POST",
            "/v1/audio/speech",
            headers={"authorization": f"Bearer {key}"},
            json={"model": "tts-slow", "voice": "alloy", "input": text},
        )
        response = await http.send(request, stream=True)
        async for _ in response.aiter_raw():
            break  # the first piece of audio, then away
        request_id = response.headers["x-request-id"]
        await response.aclose()
    row = await gateway.usage(request_id)
    assert (row.status_code, row.characters) == (499, len(text))
    assert row.cost_nano_usd == -(-len(text) * 15_000_000 // 1000)


# -- against a backend that answers before it reads the upload -------------------------------------


@contextlib.asynccontextmanager
async def early_backend(status: int, reply: dict[str, Any]) -> AsyncIterator[int]:
    """Answers every request as soon as its headers are in, then reads (and drops) what follows."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            await reader.readuntil(b"\r\n\r\n")
            body = json.dumps(reply).encode()
            head = f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
            writer.write(head.encode() + body)
            await writer.drain()
            while await reader.read(65536):
                pass
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def _models(tmp: Path, port: int) -> str:
    path = tmp / "early.yaml"
    path.write_text(
        f"backends:\n  early:\n    kind: openai\n    base_url: http://127.0.0.1:{port}/v1\n"
        "models:\n  early-whisper:\n    backend: early\n    prices: {audio_second: 100}\n"
    )
    return str(path)


async def _slow_body(body: bytes, pause: float = 0.0) -> AsyncIterator[bytes]:
    for start in range(0, len(body), 32_768):
        yield body[start : start + 32_768]
        await asyncio.sleep(pause)


@pytest.mark.parametrize(("status", "expected"), [(401, 502), (200, 200)])
async def test_a_backend_answering_before_the_upload_ends(tmp_path: Path, status: int, expected: int) -> None:
    reply = (
        {"error": {"message": "no"}}
        if status == 401
        else {"text": "early", "usage": {"type": "duration", "seconds": 2}}
    )
    async with (
        early_backend(status, reply) as port,
        running_gateway("embedded", tmp_path, models_file=_models(tmp_path, port)) as gateway,
    ):
        key = await gateway.create_key("early")
        body = form(("model", b"early-whisper", None), ("file", b"\x00" * 2_000_000, "a.wav"))
        response = await _post(gateway, key, _slow_body(body, 0.001))
        assert response.status_code == expected, response.text
        if status == 401:
            assert response.json()["error"]["code"] == "backend_auth_failed"
        else:
            assert response.json()["text"] == "early"
        row = await gateway.usage(response.headers["x-request-id"])
        assert row.status_code == expected and row.error_type != "internal"


async def test_a_stalled_upload_is_cut_off_with_408(tmp_path: Path) -> None:
    async with (
        early_backend(200, {"text": "x"}) as port,
        running_gateway(
            "embedded", tmp_path, models_file=_models(tmp_path, port), upload_idle_timeout_seconds=0.5
        ) as gateway,
    ):
        key = await gateway.create_key("stall")

        async def stalling() -> AsyncIterator[bytes]:
            yield form(("model", b"early-whisper", None))[: -len(f"--{BOUNDARY}--\r\n")]
            await asyncio.sleep(3)
            yield b""

        response = await _post(gateway, key, stalling())
        assert response.status_code == 408 and response.json()["error"]["code"] == "request_timeout"
