"""Tests for the fake OpenAI-compatible upstream used by the gateway's tests and benchmarks."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import signal
import struct
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml
from fakes.fake_upstream import FakeUpstream

REPO_ROOT = Path(__file__).resolve().parents[1]
SPEC_CANDIDATES = [
    Path(os.environ.get("OPENAI_OPENAPI_SPEC", "/nonexistent")),
    REPO_ROOT / "specs" / "openai-openapi.yaml",
    Path("/work/shared/specs/openai-openapi.yaml"),
]
DONE = "[DONE]"
REPLY = "This is a fake reply from the upstream."

Json = dict[str, Any]


# -- fixtures and helpers ------------------------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    upstream = FakeUpstream()
    await upstream.start()
    yield upstream
    await upstream.stop()


@pytest.fixture
async def client(fake: FakeUpstream) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.base_url, timeout=5) as http:
        yield http


def _nullable_to_json_schema(node: Any) -> Any:
    """The spec mixes OpenAPI 3.0 `nullable: true` into 3.1 schemas; make it plain JSON Schema."""
    if isinstance(node, list):
        return [_nullable_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _nullable_to_json_schema(value) for key, value in node.items() if key != "nullable"}
    return {"anyOf": [converted, {"type": "null"}]} if node.get("nullable") is True else converted


@pytest.fixture(scope="session")
def openai_schemas() -> Json:
    path = next((p for p in SPEC_CANDIDATES if p.is_file()), None)
    if path is None:
        pytest.skip("OpenAI OpenAPI spec not available (set OPENAI_OPENAPI_SPEC)")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open() as handle:
        spec = yaml.load(handle, Loader=loader)
    schemas: Json = _nullable_to_json_schema(spec["components"]["schemas"])
    return schemas


def check_spec(schemas: Json, name: str, instance: Any) -> None:
    schema = {"$ref": f"#/components/schemas/{name}", "components": {"schemas": schemas}}
    jsonschema.Draft202012Validator(schema).validate(instance)


def chat_body(model: str = "fake-model", text: str = "hello there", **extra: Any) -> Json:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


async def read_events(response: httpx.Response) -> list[Any]:
    events: list[Any] = []
    async for line in response.aiter_lines():
        if line.startswith("data: "):
            payload = line[len("data: ") :]
            events.append(payload if payload == DONE else json.loads(payload))
    return events


async def stream_events(client: httpx.AsyncClient, path: str, body: Json) -> list[Any]:
    async with client.stream("POST", path, json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return await read_events(response)


async def wait_for(predicate: Any, within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def read_http_response(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes]:
    """Read one Content-Length framed response from a raw connection."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    status_line, *header_lines = head.strip().split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in header_lines)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status_line, headers, body


# -- chat completions ----------------------------------------------------------------------------


async def test_chat_completion_shape(client: httpx.AsyncClient, openai_schemas: Json) -> None:
    response = await client.post(
        "/chat/completions",
        json=chat_body("my-model", "one two three"),
        headers={"Authorization": "Bearer k"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    data = response.json()
    check_spec(openai_schemas, "CreateChatCompletionResponse", data)
    assert data["id"].startswith("chatcmpl-fake-")
    assert data["object"] == "chat.completion"
    assert isinstance(data["created"], int)
    assert data["model"] == "my-model"
    assert isinstance(data["system_fingerprint"], str)
    [choice] = data["choices"]
    assert choice == {
        "index": 0,
        "message": {"role": "assistant", "content": REPLY, "refusal": None},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert data["usage"] == {
        "prompt_tokens": 3,
        "completion_tokens": 8,
        "total_tokens": 11,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


async def test_chat_ids_are_unique(client: httpx.AsyncClient) -> None:
    responses = await asyncio.gather(*(client.post("/chat/completions", json=chat_body()) for _ in range(30)))
    assert len({r.json()["id"] for r in responses}) == 30


async def test_prompt_tokens_count_words_of_all_text_parts(client: httpx.AsyncClient) -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is  in\nthis image"},
                {"type": "image_url", "image_url": {"url": "https://example.com/x.png"}},
            ],
        },
    ]
    data = (await client.post("/chat/completions", json={"model": "m", "messages": messages})).json()
    assert data["usage"]["prompt_tokens"] == 7
    empty = (await client.post("/chat/completions", json=chat_body(text=""))).json()
    assert empty["usage"]["prompt_tokens"] == 1  # never zero


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
async def test_max_tokens_truncates_reply(client: httpx.AsyncClient, field: str) -> None:
    data = (await client.post("/chat/completions", json={**chat_body(), field: 3})).json()
    assert data["choices"][0]["message"]["content"] == "This is a"
    assert data["choices"][0]["finish_reason"] == "length"
    assert data["usage"]["completion_tokens"] == 3


async def test_tool_call_when_user_spoke_last(client: httpx.AsyncClient, openai_schemas: Json) -> None:
    tools = [
        {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}},
        {"type": "function", "function": {"name": "other"}},
    ]
    data = (await client.post("/chat/completions", json=chat_body(tools=tools))).json()
    check_spec(openai_schemas, "CreateChatCompletionResponse", data)
    choice = data["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    [call] = choice["message"]["tool_calls"]
    assert call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {}

    forced = chat_body(tools=tools, tool_choice={"type": "function", "function": {"name": "other"}})
    data = (await client.post("/chat/completions", json=forced)).json()
    assert data["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "other"

    # After the tool answered, the model replies with text again.
    messages = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "sunny"},
    ]
    data = (await client.post("/chat/completions", json={"model": "m", "messages": messages, "tools": tools})).json()
    assert data["choices"][0]["finish_reason"] == "stop"
    assert data["choices"][0]["message"]["content"] == REPLY


async def test_chat_stream_without_usage(client: httpx.AsyncClient, openai_schemas: Json) -> None:
    events = await stream_events(client, "/chat/completions", chat_body("m", "a b", stream=True))
    assert events[-1] == DONE
    chunks = events[:-1]
    for chunk in chunks:
        check_spec(openai_schemas, "CreateChatCompletionStreamResponse", chunk)
        assert chunk["object"] == "chat.completion.chunk"
        assert "usage" not in chunk
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    content = [c["choices"][0]["delta"]["content"] for c in chunks[1:-1]]
    assert len(content) == 8
    assert "".join(content) == REPLY
    assert chunks[-1]["choices"][0]["delta"] == {}
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


async def test_chat_stream_with_usage(client: httpx.AsyncClient, openai_schemas: Json) -> None:
    body = chat_body("m", "a b", stream=True, stream_options={"include_usage": True})
    events = await stream_events(client, "/chat/completions", body)
    assert events[-1] == DONE
    *chunks, last = events[:-1]
    for chunk in [*chunks, last]:
        check_spec(openai_schemas, "CreateChatCompletionStreamResponse", chunk)
    assert all(chunk["usage"] is None for chunk in chunks)
    assert last["choices"] == []
    assert last["usage"]["prompt_tokens"] == 2
    assert last["usage"]["completion_tokens"] == 8
    assert last["usage"]["total_tokens"] == 10


async def test_chat_stream_raw_sse_framing(client: httpx.AsyncClient) -> None:
    async with client.stream("POST", "/chat/completions", json=chat_body(stream=True)) as response:
        raw = b"".join([part async for part in response.aiter_raw()])
    assert response.headers["transfer-encoding"] == "chunked"
    assert raw.endswith(b"data: [DONE]\n\n")
    events = raw.split(b"\n\n")[:-1]
    assert all(event.startswith(b"data: ") and b"\n" not in event for event in events)


async def test_chat_stream_tool_call(client: httpx.AsyncClient, openai_schemas: Json) -> None:
    tools = [{"type": "function", "function": {"name": "lookup"}}]
    events = await stream_events(client, "/chat/completions", chat_body(tools=tools, stream=True))
    chunks = events[:-1]
    for chunk in chunks:
        check_spec(openai_schemas, "CreateChatCompletionStreamResponse", chunk)
    first = chunks[0]["choices"][0]["delta"]
    assert first["role"] == "assistant"
    assert first["tool_calls"][0]["function"]["name"] == "lookup"
    arguments = "".join(
        call["function"].get("arguments", "")
        for chunk in chunks
        for call in chunk["choices"][0]["delta"].get("tool_calls", [])
    )
    assert arguments == "{}"
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


# -- legacy completions, embeddings, models --------------------------------------------------------


async def test_legacy_completion(client: httpx.AsyncClient, openai_schemas: Json) -> None:
    data = (await client.post("/completions", json={"model": "m", "prompt": "say this"})).json()
    check_spec(openai_schemas, "CreateCompletionResponse", data)
    assert data["object"] == "text_completion"
    assert data["id"].startswith("cmpl-fake-")
    assert data["choices"][0]["text"] == REPLY
    assert data["choices"][0]["finish_reason"] == "stop"
    assert data["usage"]["prompt_tokens"] == 2
    assert data["usage"]["completion_tokens"] == 8

    tokens = (await client.post("/completions", json={"model": "m", "prompt": [[1, 2], [3]], "max_tokens": 2})).json()
    assert tokens["usage"]["prompt_tokens"] == 3
    assert tokens["choices"][0]["text"] == "This is"
    assert tokens["choices"][0]["finish_reason"] == "length"


async def test_legacy_completion_stream(client: httpx.AsyncClient, openai_schemas: Json) -> None:
    plain = await stream_events(client, "/completions", {"model": "m", "prompt": "x", "stream": True})
    assert plain[-1] == DONE
    assert all("usage" not in chunk for chunk in plain[:-1])
    assert "".join(chunk["choices"][0]["text"] for chunk in plain[:-1]) == REPLY
    assert plain[-2]["choices"][0]["finish_reason"] == "stop"

    body = {"model": "m", "prompt": "x y", "stream": True, "stream_options": {"include_usage": True}}
    events = await stream_events(client, "/completions", body)
    *chunks, last = events[:-1]
    # The spec describes streamed chunks with the non-streamed schema, but the live API sends
    # `finish_reason: null` and `usage: null` mid-stream, as this fake does: check those by hand.
    check_spec(openai_schemas, "CreateCompletionResponse", last)
    assert all(chunk["object"] == "text_completion" and chunk["usage"] is None for chunk in chunks)
    assert [chunk["choices"][0]["finish_reason"] for chunk in chunks] == [None] * 8 + ["stop"]
    assert last["choices"] == []
    assert last["usage"]["prompt_tokens"] == 2


@pytest.mark.parametrize(
    ("value", "count", "tokens"),
    [
        ("hello big world", 1, 3),
        (["a b", "c"], 2, 3),
        ([1, 2, 3], 1, 3),
        ([[1, 2], [3], [4, 5, 6]], 3, 6),
    ],
)
async def test_embeddings_inputs(
    client: httpx.AsyncClient, openai_schemas: Json, value: Any, count: int, tokens: int
) -> None:
    data = (await client.post("/embeddings", json={"model": "emb", "input": value})).json()
    check_spec(openai_schemas, "CreateEmbeddingResponse", data)
    assert data["object"] == "list"
    assert data["model"] == "emb"
    assert [item["index"] for item in data["data"]] == list(range(count))
    assert all(item["object"] == "embedding" and len(item["embedding"]) == 8 for item in data["data"])
    assert data["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}


async def test_embeddings_are_deterministic(client: httpx.AsyncClient) -> None:
    async def embed(value: Any, **extra: Any) -> list[Any]:
        response = await client.post("/embeddings", json={"model": "emb", "input": value, **extra})
        return [item["embedding"] for item in response.json()["data"]]

    first, second = await embed(["alpha", "beta"]), await embed(["alpha", "beta"])
    assert first == second
    assert first[0] != first[1]
    assert abs(sum(v * v for v in first[0]) - 1.0) < 1e-5  # unit length like OpenAI's vectors
    assert len((await embed("alpha", dimensions=3))[0]) == 3
    [packed] = await embed("alpha", encoding_format="base64")
    raw = base64.b64decode(packed)
    assert list(struct.unpack("<8f", raw)) == first[0]


async def test_models(client: httpx.AsyncClient, openai_schemas: Json) -> None:
    listing = (await client.get("/models")).json()
    check_spec(openai_schemas, "ListModelsResponse", listing)
    assert listing["object"] == "list"
    assert listing["data"] and all(model["object"] == "model" for model in listing["data"])
    model = (await client.get("/models/org%2Fanything-at-all")).json()
    check_spec(openai_schemas, "Model", model)
    assert model["id"] == "org/anything-at-all"


# -- errors --------------------------------------------------------------------------------------


async def test_unknown_path_is_404(client: httpx.AsyncClient, openai_schemas: Json) -> None:
    response = await client.get("/nope")
    assert response.status_code == 404
    check_spec(openai_schemas, "ErrorResponse", response.json())
    assert (await client.get("/chat/completions")).status_code == 404


@pytest.mark.parametrize(
    ("content", "param"),
    [
        (b"{not json", None),
        (b"[1, 2]", None),
        (b'{"messages": []}', "model"),
        (b'{"model": "m"}', "messages"),
    ],
)
async def test_bad_request_bodies(
    client: httpx.AsyncClient, openai_schemas: Json, content: bytes, param: str | None
) -> None:
    response = await client.post("/chat/completions", content=content)
    assert response.status_code == 400
    check_spec(openai_schemas, "ErrorResponse", response.json())
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert response.json()["error"]["param"] == param


# -- behaviour markers ---------------------------------------------------------------------------


async def test_slow_marker(client: httpx.AsyncClient) -> None:
    started = time.monotonic()
    response = await client.post("/chat/completions", json=chat_body("fake-slow-200"))
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.19


@pytest.mark.parametrize(
    ("status", "error_type", "code"),
    [
        (500, "server_error", None),
        (503, "server_error", None),
        (400, "invalid_request_error", None),
        (429, "rate_limit_error", "rate_limit_exceeded"),
    ],
)
async def test_error_marker(
    client: httpx.AsyncClient, openai_schemas: Json, status: int, error_type: str, code: str | None
) -> None:
    for path, body in [
        ("/chat/completions", chat_body(f"fake-error-{status}")),
        ("/chat/completions", chat_body(f"fake-error-{status}", stream=True)),
        ("/embeddings", {"model": f"fake-error-{status}", "input": "x"}),
    ]:
        response = await client.post(path, json=body)
        assert response.status_code == status
        assert response.headers["content-type"] == "application/json"
        check_spec(openai_schemas, "ErrorResponse", response.json())
        error = response.json()["error"]
        assert error == {
            "message": f"fake upstream error {status}",
            "type": error_type,
            "param": None,
            "code": code,
        }
        assert response.headers.get("retry-after") == ("1" if status == 429 else None)


async def test_tokens_marker(client: httpx.AsyncClient) -> None:
    data = (await client.post("/chat/completions", json=chat_body("fake-slow-5-tokens-30-12"))).json()
    assert data["usage"]["prompt_tokens"] == 30
    assert data["usage"]["completion_tokens"] == 12
    assert data["usage"]["total_tokens"] == 42
    assert len(data["choices"][0]["message"]["content"].split()) == 12

    body = chat_body("fake-tokens-30-7", stream=True, stream_options={"include_usage": True})
    events = await stream_events(client, "/chat/completions", body)
    content_chunks = [e for e in events[:-1] if e["choices"] and e["choices"][0]["delta"].get("content")]
    assert len(content_chunks) == 7
    assert events[-2]["usage"]["completion_tokens"] == 7

    embedded = (await client.post("/embeddings", json={"model": "e-tokens-9-0", "input": "x"})).json()
    assert embedded["usage"]["prompt_tokens"] == 9


async def test_chunkdelay_streams_progressively(client: httpx.AsyncClient, fake: FakeUpstream) -> None:
    arrivals: list[float] = []
    body = chat_body("fake-chunkdelay-60-tokens-1-3", stream=True)
    async with client.stream("POST", "/chat/completions", json=body) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                arrivals.append(time.monotonic())
    assert len(arrivals) == 6  # role, 3 words, finish, [DONE]
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert all(gap >= 0.04 for gap in gaps), gaps
    assert fake.completed_streams == 1
    assert fake.disconnects == 0


async def test_client_disconnect_mid_stream_is_counted(client: httpx.AsyncClient, fake: FakeUpstream) -> None:
    body = chat_body("fake-chunkdelay-100", stream=True)
    async with client.stream("POST", "/chat/completions", json=body) as response:
        lines = response.aiter_lines()
        assert (await anext(lines)).startswith("data: ")
    await wait_for(lambda: fake.disconnects == 1)
    assert fake.completed_streams == 0
    stats = (await client.get(f"http://127.0.0.1:{fake.port}/_fake/stats")).json()
    assert stats == {"disconnects": 1, "abandoned": 1, "completed_streams": 0, "requests": 1}


async def test_hang_marker(fake: FakeUpstream) -> None:
    async with httpx.AsyncClient(base_url=fake.base_url, timeout=0.3) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post("/chat/completions", json=chat_body("fake-hang"))
        with pytest.raises(httpx.ReadTimeout):
            await client.post("/chat/completions", json=chat_body("fake-hang", stream=True))
    # The abandoned stream counts as a disconnect; the plain request does not.
    await wait_for(lambda: fake.disconnects == 1)
    assert len(fake.requests) == 2


async def test_stream_error_marker(client: httpx.AsyncClient, fake: FakeUpstream) -> None:
    events: list[Any] = []
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        async with client.stream("POST", "/chat/completions", json=chat_body("x-streamerror", stream=True)) as r:
            async for line in r.aiter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
    assert len(events) == 3  # role chunk and two content chunks, never a finish chunk or [DONE]
    assert [e["choices"][0]["delta"].get("content") for e in events] == ["", "This", " is"]
    assert fake.disconnects == 0
    assert fake.completed_streams == 0


def test_markers_only_match_whole_words() -> None:
    from fakes.fake_markers import Behaviour, parse_behaviour

    assert parse_behaviour("gpt-4o-2024-08-06") == Behaviour()
    assert parse_behaviour("fake-streamerror") == Behaviour(stream_error=True)
    assert parse_behaviour("Fake-Slow-50-chunkdelay-7-error-502-hang-tokens-3-4") == Behaviour(
        slow_ms=50, chunk_delay_ms=7, error_status=502, hang=True, tokens=(3, 4)
    )
    assert parse_behaviour("unchanged-error-200").error_status is None


# -- recording and introspection -----------------------------------------------------------------


async def test_requests_are_recorded(client: httpx.AsyncClient, fake: FakeUpstream) -> None:
    body = chat_body("m", "hi")
    await client.post("/chat/completions?trace=1", json=body, headers={"Authorization": "Bearer sk-up"})
    await client.post("/chat/completions", content=b"{broken")
    [first, broken] = fake.requests
    assert (first.method, first.path, first.query) == ("POST", "/v1/chat/completions", "trace=1")
    assert first.headers["authorization"] == "Bearer sk-up"
    assert first.body == body
    assert broken.body is None

    base = f"http://127.0.0.1:{fake.port}/_fake"
    listed = (await client.get(f"{base}/requests")).json()
    assert [item["body"] for item in listed] == [body, None]
    assert listed[0]["headers"]["authorization"] == "Bearer sk-up"
    assert (await client.get(f"{base}/stats")).json() == {
        "disconnects": 0,
        "abandoned": 0,
        "completed_streams": 0,
        "requests": 2,
    }
    assert (await client.delete(f"{base}/requests")).status_code == 200
    assert (await client.get(f"{base}/requests")).json() == []
    assert fake.requests == []
    assert (await client.get(f"{base}/stats")).json()["requests"] == 0


async def test_recording_is_bounded_and_can_be_disabled() -> None:
    quiet = FakeUpstream(record=False)
    await quiet.start()
    try:
        async with httpx.AsyncClient(base_url=quiet.base_url) as client:
            assert (await client.post("/chat/completions", json=chat_body())).status_code == 200
        assert quiet.requests == []
        assert quiet.stats()["requests"] == 1
    finally:
        await quiet.stop()


async def test_chunked_request_body(client: httpx.AsyncClient, fake: FakeUpstream) -> None:
    payload = json.dumps(chat_body("m", "one two three four")).encode()

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 7):
            yield payload[start : start + 7]

    response = await client.post("/chat/completions", content=pieces())
    assert response.json()["usage"]["prompt_tokens"] == 4
    assert fake.requests[-1].headers["transfer-encoding"] == "chunked"


# -- raw HTTP/1.x behaviour ----------------------------------------------------------------------


def _raw_request(method: str, path: str, body: bytes = b"", version: str = "1.1", extra: str = "") -> bytes:
    head = f"{method} {path} HTTP/{version}\r\nHost: x\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    return head.encode() + body


async def test_keep_alive_and_pipelining(fake: FakeUpstream) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", fake.port)
    chat = json.dumps(chat_body("fake-slow-50")).encode()
    # Three requests in one write: the slow one must still be answered first.
    writer.write(
        _raw_request("POST", "/v1/chat/completions", chat)
        + _raw_request("GET", "/v1/models")
        + _raw_request("POST", "/v1/embeddings", b'{"model": "e", "input": "x"}')
    )
    first, second, third = [await read_http_response(reader) for _ in range(3)]
    assert json.loads(first[2])["object"] == "chat.completion"
    assert json.loads(second[2])["object"] == "list" and "data" in json.loads(second[2])
    assert json.loads(third[2])["data"][0]["object"] == "embedding"
    assert all(response[1]["connection"] == "keep-alive" for response in (first, second, third))
    # The same connection keeps working afterwards.
    writer.write(_raw_request("GET", "/v1/models/abc"))
    assert json.loads((await read_http_response(reader))[2])["id"] == "abc"
    writer.close()
    await writer.wait_closed()


async def test_http10_stream_is_close_delimited(fake: FakeUpstream) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", fake.port)
    writer.write(_raw_request("POST", "/v1/chat/completions", json.dumps(chat_body(stream=True)).encode(), "1.0"))
    raw = await asyncio.wait_for(reader.read(), timeout=5)  # EOF ends the body
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"transfer-encoding" not in head.lower()
    assert b"connection: close" in head.lower()
    assert body.endswith(b"data: [DONE]\n\n")
    writer.close()
    await writer.wait_closed()


async def test_expect_continue(fake: FakeUpstream) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", fake.port)
    body = json.dumps(chat_body()).encode()
    writer.write(
        _raw_request("POST", "/v1/chat/completions", extra="Expect: 100-continue\r\n").replace(
            b"Content-Length: 0", f"Content-Length: {len(body)}".encode()
        )
    )
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 100 Continue")
    writer.write(body)
    status, _, payload = await read_http_response(reader)
    assert status == "HTTP/1.1 200 OK"
    assert json.loads(payload)["object"] == "chat.completion"
    writer.close()
    await writer.wait_closed()


async def test_stop_ends_hanging_requests() -> None:
    upstream = FakeUpstream()
    await upstream.start()
    async with httpx.AsyncClient(base_url=upstream.base_url, timeout=5) as client:
        pending = asyncio.create_task(client.post("/chat/completions", json=chat_body("hang")))
        await wait_for(lambda: len(upstream.requests) == 1)
        await upstream.stop()
        with pytest.raises(httpx.TransportError):
            await pending


# -- command line --------------------------------------------------------------------------------


async def test_main_runs_until_sigterm() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fakes.fake_upstream",
        "--port",
        "0",
        "--no-record",
        cwd=REPO_ROOT / "tests",  # the fakes are the package `fakes` under tests/
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=10)).decode().strip()
        assert line.startswith("fake-upstream listening on http://127.0.0.1:")
        async with httpx.AsyncClient(base_url=line.rsplit(" ", 1)[1] + "/v1") as client:
            assert (await client.get("/models")).status_code == 200
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


# -- Responses API --------------------------------------------------------------------------------


async def test_responses_plain_with_openai_sdk(
    fake: FakeUpstream, client: httpx.AsyncClient, openai_schemas: Json
) -> None:
    import openai

    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key="sk-fake", max_retries=0) as sdk:
        response = await sdk.responses.create(model="fake-model", input="hi there", instructions="be brief")
    assert response.output_text == REPLY
    assert response.status == "completed"
    assert response.id.startswith("resp_fake_")
    assert str(response.output[0].id).startswith("msg_fake_")
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.total_tokens) == (4, 8, 12)
    assert response.usage.input_tokens_details.cached_tokens == 0
    assert response.usage.output_tokens_details.reasoning_tokens == 0
    raw = await client.post("/responses", json={"model": "fake-model", "input": "hi"})
    check_spec(openai_schemas, "Response", raw.json())


async def test_responses_input_items_and_max_output_tokens(client: httpx.AsyncClient) -> None:
    body = {
        "model": "fake-model",
        "input": [
            {"role": "user", "content": "one two"},
            {"role": "user", "content": [{"type": "input_text", "text": "three four five"}]},
        ],
        "max_output_tokens": 3,
    }
    response = await client.post("/responses", json=body)
    assert response.status_code == 200
    payload = response.json()
    assert payload["object"] == "response"
    assert payload["output"][0]["content"][0]["text"] == "This is a"
    assert payload["usage"]["input_tokens"] == 5
    assert payload["usage"]["output_tokens"] == 3


async def test_responses_stream_with_openai_sdk(fake: FakeUpstream) -> None:
    import openai
    from openai.types.responses import ResponseCompletedEvent, ResponseCreatedEvent, ResponseTextDeltaEvent

    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key="sk-fake", max_retries=0) as sdk:
        stream = await sdk.responses.create(model="fake-model", input="hi", stream=True)
        events = [event async for event in stream]
    types = [event.type for event in events]
    assert types[:3] == ["response.created", "response.output_item.added", "response.content_part.added"]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    deltas = [event.delta for event in events if isinstance(event, ResponseTextDeltaEvent)]
    assert len(deltas) == 8 and "".join(deltas) == REPLY
    assert [event.sequence_number for event in events] == list(range(len(events)))
    first, final = events[0], events[-1]
    assert isinstance(first, ResponseCreatedEvent)
    assert first.response.status == "in_progress" and first.response.output == []
    assert isinstance(final, ResponseCompletedEvent)
    assert final.response.output_text == REPLY
    assert final.response.usage is not None and final.response.usage.input_tokens == 1


SPEC_EVENTS = {
    "response.created": "ResponseCreatedEvent",
    "response.output_item.added": "ResponseOutputItemAddedEvent",
    "response.content_part.added": "ResponseContentPartAddedEvent",
    "response.output_text.delta": "ResponseTextDeltaEvent",
    "response.output_text.done": "ResponseTextDoneEvent",
    "response.content_part.done": "ResponseContentPartDoneEvent",
    "response.output_item.done": "ResponseOutputItemDoneEvent",
    "response.completed": "ResponseCompletedEvent",
}


async def test_responses_stream_raw_framing(client: httpx.AsyncClient, openai_schemas: Json) -> None:
    body = {"model": "fake-model", "input": "hi", "stream": True}
    async with client.stream("POST", "/responses", json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = (await response.aread()).decode()
    frames = [frame for frame in raw.split("\n\n") if frame]
    assert DONE not in raw
    for frame in frames:
        event_line, data_line = frame.split("\n")
        assert data_line.startswith("data: ")
        event = json.loads(data_line[len("data: ") :])
        assert event_line == "event: " + event["type"]
        name = SPEC_EVENTS[event["type"]]
        check_spec(openai_schemas, name, event)


async def test_responses_tokens_marker(fake: FakeUpstream) -> None:
    import openai
    from openai.types.responses import ResponseCompletedEvent

    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key="sk-fake", max_retries=0) as sdk:
        response = await sdk.responses.create(model="fake-tokens-5-3", input="a b c d e f g h i j")
        stream = await sdk.responses.create(model="fake-tokens-5-3", input="hi", stream=True)
        events = [event async for event in stream]
    assert response.output_text == "This is a"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.total_tokens) == (5, 3, 8)
    final = events[-1]
    assert isinstance(final, ResponseCompletedEvent) and final.response.usage is not None
    assert (final.response.usage.input_tokens, final.response.usage.output_tokens) == (5, 3)


async def test_responses_error_marker_and_bad_input(fake: FakeUpstream, client: httpx.AsyncClient) -> None:
    import openai

    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key="sk-fake", max_retries=0) as sdk:
        with pytest.raises(openai.InternalServerError):
            await sdk.responses.create(model="fake-error-503", input="hi")
    response = await client.post("/responses", json={"model": "fake-model", "input": 3})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "input"
