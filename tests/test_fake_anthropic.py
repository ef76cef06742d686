"""Tests for the fake Anthropic Messages API, over raw HTTP and through the official SDK."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import anthropic
import httpx
import pytest
from anthropic.types import ToolParam
from fakes.fake_anthropic import FakeAnthropic

REPLY = "This is a fake reply from Anthropic."
HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
TOOLS: list[ToolParam] = [{"name": "search", "description": "Search.", "input_schema": {"type": "object"}}]
STREAM_ORDER = ["message_start", "content_block_start", "ping", "content_block_delta"]

Json = dict[str, Any]


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic() as server:
        yield server


@pytest.fixture
async def client(fake: FakeAnthropic) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.base_url, headers=HEADERS, timeout=5) as http:
        yield http


@pytest.fixture
async def sdk(fake: FakeAnthropic) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(base_url=fake.root_url, api_key="k", max_retries=0, timeout=5) as client:
        yield client


def body(model: str = "claude-fake", max_tokens: int = 100, **extra: Any) -> Json:
    return {"model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": "Hello there"}], **extra}


def usage(inp: int, out: int, cache_write: int, cache_read: int) -> Json:
    return {
        "input_tokens": inp,
        "output_tokens": out,
        "cache_creation_input_tokens": cache_write,
        "cache_read_input_tokens": cache_read,
    }


def parse_sse(text: str) -> list[tuple[str, Json]]:
    """(event, data) pairs; checks every event has exactly one `event:` and one `data:` line."""
    events = []
    for frame in text.split("\n\n"):
        if not frame:
            continue
        lines = frame.split("\n")
        assert len(lines) == 2 and lines[0].startswith("event: ") and lines[1].startswith("data: "), frame
        kind, data = lines[0][len("event: ") :], json.loads(lines[1][len("data: ") :])
        assert data["type"] == kind
        events.append((kind, data))
    return events


async def stream(client: httpx.AsyncClient, payload: Json) -> list[tuple[str, Json]]:
    response = await client.post("/messages", json={**payload, "stream": True})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    return parse_sse(response.text)


# -- plain messages over HTTP --------------------------------------------------------------------


async def test_message_shape_and_recording(fake: FakeAnthropic, client: httpx.AsyncClient) -> None:
    assert fake.base_url == f"http://127.0.0.1:{fake.port}/v1"
    response = await client.post("/messages", json=body(system="Be brief please"))
    assert response.status_code == 200
    assert response.headers["request-id"].startswith("req_fake_")
    message = response.json()
    assert message.pop("id") == "msg_fake_1"
    expected = {"type": "message", "role": "assistant", "model": "claude-fake", "stop_sequence": None}
    content = [{"type": "text", "text": REPLY}]
    assert message == {**expected, "content": content, "stop_reason": "end_turn", "usage": usage(5, 7, 0, 0)}
    [recorded] = fake.requests
    assert (recorded.method, recorded.path) == ("POST", "/v1/messages")
    assert recorded.headers["x-api-key"] == "k" and recorded.body["system"] == "Be brief please"
    fake.clear_requests()
    assert fake.requests == []


async def test_max_tokens_truncates(client: httpx.AsyncClient) -> None:
    message = (await client.post("/messages", json=body(max_tokens=3))).json()
    assert message["id"] == "msg_fake_1"
    assert (await client.post("/messages", json=body())).json()["id"] == "msg_fake_2"
    assert message["content"][0]["text"] == "This is a"
    assert message["stop_reason"] == "max_tokens"
    assert message["usage"]["output_tokens"] == 3


async def test_input_tokens_count_text_blocks(client: httpx.AsyncClient) -> None:
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "one two"}, {"type": "image", "source": {}}]},
        {"role": "assistant", "content": "three"},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "x", "content": "not counted"}]},
    ]
    payload = {**body(system=[{"type": "text", "text": "four five six"}]), "messages": messages}
    assert (await client.post("/messages", json=payload)).json()["usage"]["input_tokens"] == 6
    empty = {**body(), "messages": [{"role": "user", "content": ""}]}
    assert (await client.post("/messages", json=empty)).json()["usage"]["input_tokens"] == 1


async def test_count_tokens(client: httpx.AsyncClient) -> None:
    payload = {"model": "m", "messages": [{"role": "user", "content": "a b c"}]}
    response = await client.post("/messages/count_tokens", json=payload)
    assert response.json() == {"input_tokens": 3}


async def test_tool_use(client: httpx.AsyncClient) -> None:
    message = (await client.post("/messages", json=body(tools=TOOLS))).json()
    assert message["stop_reason"] == "tool_use"
    text, tool = message["content"]
    assert text["type"] == "text"
    assert tool["type"] == "tool_use" and tool["id"].startswith("toolu_fake_")
    assert tool["name"] == "search" and tool["input"] == {"query": "fake"}


async def test_tool_result_and_tool_choice_none_answer_text(client: httpx.AsyncClient) -> None:
    result = [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "42"}]
    payload = {**body(tools=TOOLS), "messages": [{"role": "user", "content": result}]}
    assert (await client.post("/messages", json=payload)).json()["stop_reason"] == "end_turn"
    none = body(tools=TOOLS, tool_choice={"type": "none"})
    assert (await client.post("/messages", json=none)).json()["content"] == [{"type": "text", "text": REPLY}]


# -- headers, validation and errors --------------------------------------------------------------


def error_of(response: httpx.Response) -> str:
    payload = response.json()
    assert payload["type"] == "error" and isinstance(payload["error"]["message"], str)
    return str(payload["error"]["type"])


async def test_required_headers(fake: FakeAnthropic) -> None:
    async with httpx.AsyncClient(base_url=fake.base_url) as http:
        response = await http.post("/messages", json=body(), headers={"anthropic-version": "2023-06-01"})
        assert response.status_code == 401 and error_of(response) == "authentication_error"
        response = await http.post("/messages", json=body(), headers={"x-api-key": "k"})
        assert response.status_code == 400 and error_of(response) == "invalid_request_error"
        bearer = {"anthropic-version": "2023-06-01", "authorization": "Bearer k"}  # how the SDK sends api_key
        assert (await http.post("/messages", json=body(), headers=bearer)).status_code == 200


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
        body(max_tokens=0),
        {**body(), "max_tokens": True},
        {**body(), "max_tokens": "5"},
        {**body(), "messages": []},
        {**body(), "messages": [{"role": "system", "content": "x"}]},
        {**body(), "messages": [{"role": "user"}]},
        {**body(), "messages": ["hi"]},
        body(system=5),
    ],
)
async def test_invalid_bodies(client: httpx.AsyncClient, payload: Any) -> None:
    response = await client.post("/messages", json=payload)
    assert response.status_code == 400 and error_of(response) == "invalid_request_error"


async def test_malformed_json(client: httpx.AsyncClient) -> None:
    response = await client.post("/messages", content=b"{nope", headers={"content-type": "application/json"})
    assert response.status_code == 400 and error_of(response) == "invalid_request_error"


@pytest.mark.parametrize(("method", "path"), [("POST", "/nope"), ("GET", "/messages"), ("GET", "/models")])
async def test_unknown_paths(client: httpx.AsyncClient, method: str, path: str) -> None:
    response = await client.request(method, path)
    assert response.status_code == 404 and error_of(response) == "not_found_error"


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (529, "overloaded_error"),
    ],
)
async def test_error_markers(client: httpx.AsyncClient, status: int, kind: str) -> None:
    for stream_flag in (False, True):
        response = await client.post("/messages", json=body(model=f"m-error-{status}", stream=stream_flag))
        assert response.status_code == status and error_of(response) == kind
        assert response.headers.get("retry-after") == ("1" if status == 429 else None)


# -- markers -------------------------------------------------------------------------------------


async def test_tokens_and_cache_markers(client: httpx.AsyncClient) -> None:
    message = (await client.post("/messages", json=body(model="m-tokens-17-9-cache-5-3", max_tokens=2))).json()
    assert len(message["content"][0]["text"].split()) == 9
    assert message["usage"] == usage(17, 9, 3, 5)
    events = await stream(client, body(model="m-tokens-4-2-cache-7-8"))
    assert events[0][1]["message"]["usage"] == usage(4, 1, 8, 7)
    assert events[-2][1]["usage"] == {"output_tokens": 2}


async def test_slow_marker(client: httpx.AsyncClient) -> None:
    started = time.monotonic()
    assert (await client.post("/messages", json=body(model="m-slow-200"))).status_code == 200
    assert time.monotonic() - started >= 0.18


async def test_chunkdelay_streams_progressively(client: httpx.AsyncClient) -> None:
    arrivals: list[float] = []
    started = time.monotonic()
    async with client.stream("POST", "/messages", json=body(model="m-chunkdelay-40", stream=True)) as response:
        async for _ in response.aiter_text():
            arrivals.append(time.monotonic() - started)
    assert len(arrivals) >= 5  # not one buffered blob
    assert arrivals[0] < 0.2 and arrivals[-1] >= 0.3  # 11 events, 40 ms apart


async def test_client_disconnect_is_counted(fake: FakeAnthropic, client: httpx.AsyncClient) -> None:
    async with client.stream("POST", "/messages", json=body(model="m-chunkdelay-100", stream=True)) as response:
        async for _ in response.aiter_text():
            break
    for _ in range(50):
        if fake.disconnects:
            break
        await asyncio.sleep(0.02)
    assert fake.disconnects == 1


# -- streaming over HTTP -------------------------------------------------------------------------


async def test_stream_event_sequence(fake: FakeAnthropic, client: httpx.AsyncClient) -> None:
    events = await stream(client, body())
    kinds = [kind for kind, _ in events]
    words = len(REPLY.split())
    ends = ["content_block_stop", "message_delta", "message_stop"]
    assert kinds == [*STREAM_ORDER[:3], *(["content_block_delta"] * words), *ends]
    start = events[0][1]["message"]
    assert start["content"] == [] and start["stop_reason"] is None and start["usage"]["output_tokens"] == 1
    assert events[1][1] == {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    deltas = [data["delta"] for kind, data in events if kind == "content_block_delta"]
    assert all(delta["type"] == "text_delta" for delta in deltas)
    assert "".join(delta["text"] for delta in deltas) == REPLY
    assert events[-2][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": words},
    }
    assert fake.completed_streams == 1


async def test_stream_truncated(client: httpx.AsyncClient) -> None:
    events = await stream(client, body(max_tokens=2))
    assert [data["delta"]["text"] for kind, data in events if kind == "content_block_delta"] == ["This", " is"]
    assert events[-2][1]["delta"]["stop_reason"] == "max_tokens"


async def test_stream_tool_use(client: httpx.AsyncClient) -> None:
    events = await stream(client, body(tools=TOOLS))
    tool_events = [(kind, data) for kind, data in events if data.get("index") == 1]
    assert tool_events[0][1]["content_block"]["type"] == "tool_use"
    assert tool_events[0][1]["content_block"]["input"] == {}
    parts = [data["delta"]["partial_json"] for kind, data in tool_events if kind == "content_block_delta"]
    assert 2 <= len(parts) <= 3 and all(data["delta"]["type"] == "input_json_delta" for _, data in tool_events[1:-1])
    assert json.loads("".join(parts)) == {"query": "fake"}
    assert tool_events[-1][0] == "content_block_stop"
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
    assert [kind for kind, _ in events][-2:] == ["message_delta", "message_stop"]


# -- through the official SDK --------------------------------------------------------------------


async def test_sdk_create(sdk: anthropic.AsyncAnthropic) -> None:
    message = await sdk.messages.create(
        model="claude-fake-cache-2-1", max_tokens=50, messages=[{"role": "user", "content": "Hi"}]
    )
    assert message.content[0].type == "text" and message.content[0].text == REPLY
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (1, 7)
    assert (message.usage.cache_read_input_tokens, message.usage.cache_creation_input_tokens) == (2, 1)


async def test_sdk_create_stream(sdk: anthropic.AsyncAnthropic) -> None:
    events = await sdk.messages.create(
        model="claude-fake", max_tokens=50, messages=[{"role": "user", "content": "Hi"}], stream=True
    )
    kinds = [event.type async for event in events]  # the SDK drops `ping` events
    assert kinds[:3] == ["message_start", "content_block_start", "content_block_delta"] and kinds[-2:] == [
        "message_delta",
        "message_stop",
    ]


async def test_sdk_stream_helper(sdk: anthropic.AsyncAnthropic) -> None:
    async with sdk.messages.stream(
        model="claude-fake", max_tokens=50, messages=[{"role": "user", "content": "Hi there"}]
    ) as stream_:
        text = "".join([piece async for piece in stream_.text_stream])
        final = await stream_.get_final_message()
    assert text == REPLY
    assert final.content[0].type == "text" and final.content[0].text == REPLY
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 7 and final.usage.input_tokens == 2


async def test_sdk_tool_use(sdk: anthropic.AsyncAnthropic) -> None:
    kwargs: Any = {"model": "claude-fake", "max_tokens": 50, "messages": [{"role": "user", "content": "Find"}]}
    message = await sdk.messages.create(**kwargs, tools=TOOLS)
    async with sdk.messages.stream(**kwargs, tools=TOOLS) as stream_:
        final = await stream_.get_final_message()
    for result in (message, final):
        tool: Any = result.content[-1]
        assert result.stop_reason == "tool_use"
        assert tool.type == "tool_use" and tool.name == "search" and tool.input == {"query": "fake"}


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, anthropic.BadRequestError),
        (401, anthropic.AuthenticationError),
        (403, anthropic.PermissionDeniedError),
        (429, anthropic.RateLimitError),
        (500, anthropic.InternalServerError),
        (529, anthropic.APIStatusError),
    ],
)
async def test_sdk_errors(sdk: anthropic.AsyncAnthropic, status: int, error: type[anthropic.APIStatusError]) -> None:
    with pytest.raises(error) as caught:
        await sdk.messages.create(
            model=f"claude-error-{status}", max_tokens=5, messages=[{"role": "user", "content": "Hi"}]
        )
    assert caught.value.status_code == status
    assert isinstance(caught.value.body, dict) and caught.value.body["type"] == "error"
    if status == 529:
        assert caught.value.body["error"]["type"] == "overloaded_error"


async def test_sdk_rejected_without_credentials(fake: FakeAnthropic) -> None:
    async with anthropic.AsyncAnthropic(
        base_url=fake.root_url, api_key="k", max_retries=0, default_headers={"Authorization": cast(str, anthropic.omit)}
    ) as client:
        with pytest.raises(anthropic.AuthenticationError):
            await client.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "Hi"}])


# -- lifecycle and command line ------------------------------------------------------------------


async def test_not_started() -> None:
    with pytest.raises(RuntimeError):
        _ = FakeAnthropic().port
    await FakeAnthropic().stop()  # stopping a server that never started is harmless


async def test_cli_prints_address() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fakes.fake_anthropic",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        cwd=Path(__file__).parent,  # the fakes are the package `fakes` under tests/
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 10)).decode()
        assert line.startswith("fake-anthropic listening on http://127.0.0.1:")
        url = line.split()[-1]
        async with httpx.AsyncClient(base_url=url, headers=HEADERS) as http:
            assert (await http.post("/v1/messages", json=body())).status_code == 200
    finally:
        process.terminate()
        assert await asyncio.wait_for(process.wait(), 10) == 0
