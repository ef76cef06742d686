"""Chat completions through the gateway with the real openai SDK, plain and streamed."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator

import httpx
import openai
import pytest
from harness import Gateway, eventually
from openai_spec import validate

PROMPT = [{"role": "user", "content": "Say hello"}]


@contextlib.asynccontextmanager
async def _raw_chat_stream(gateway: Gateway, key: str, model: str) -> AsyncIterator[httpx.Response]:
    """A streamed chat completion over plain HTTP, for tests that look below the SDK."""
    async with (
        gateway.http() as http,
        http.stream(
            "POST",
            "/v1/chat/completions",
            headers={"authorization": f"Bearer {key}"},
            json={"model": model, "messages": PROMPT, "stream": True},
        ) as response,
    ):
        yield response


async def test_plain_chat_completion_is_forwarded_priced_and_recorded(gateway: Gateway, key: str) -> None:
    client = gateway.openai(key)
    raw = await client.chat.completions.with_raw_response.create(model="chat-model", messages=PROMPT)
    completion = raw.parse()
    validate("CreateChatCompletionResponse", raw.http_response.json())

    assert completion.choices[0].message.content
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (12, 7)

    sent = gateway.upstream.requests[-1]
    assert sent.body["model"] == "fake-tokens-12-7"
    assert sent.headers["authorization"] == "Bearer upstream-secret-do-not-leak"

    request_id = raw.headers["x-request-id"]
    row = await gateway.usage(request_id)
    assert (row.prompt_tokens, row.completion_tokens, row.status_code) == (12, 7, 200)
    # 12 x $0.15/M + 7 x $0.60/M = $0.000006 = 6000 nano-USD
    assert row.cost_nano_usd == 6000
    assert row.model == "chat-model" and not row.streamed and row.endpoint == "chat.completions"
    assert row.key_id is not None and row.org_id is not None and row.model_version_id is not None


async def test_unknown_fields_pass_through_untouched(gateway: Gateway, key: str) -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    await gateway.openai(key).chat.completions.create(
        model="chat-model",
        messages=PROMPT,
        tools=tools,  # type: ignore[arg-type]
        response_format={"type": "json_object"},
        seed=42,
        logprobs=True,
        extra_body={"vendor_knob": {"nested": [1, 2, 3]}},
    )
    body = gateway.upstream.requests[-1].body
    assert body["tools"] == tools
    assert body["response_format"] == {"type": "json_object"}
    assert (body["seed"], body["logprobs"]) == (42, True)
    assert body["vendor_knob"] == {"nested": [1, 2, 3]}


async def test_tool_calls_come_back(gateway: Gateway, key: str) -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    completion = await gateway.openai(key).chat.completions.create(
        model="chat-model",
        messages=PROMPT,
        tools=tools,  # type: ignore[arg-type]
    )
    assert completion.choices[0].finish_reason == "tool_calls"
    calls = completion.choices[0].message.tool_calls
    assert calls and calls[0].function.name == "lookup"  # type: ignore[union-attr]


async def test_version_defaults_fill_only_missing_parameters(gateway: Gateway, key: str) -> None:
    client = gateway.openai(key)
    await client.chat.completions.create(model="default-params", messages=PROMPT)
    assert gateway.upstream.requests[-1].body["temperature"] == 0.25
    await client.chat.completions.create(model="default-params", messages=PROMPT, temperature=0.9)
    body = gateway.upstream.requests[-1].body
    assert (body["temperature"], body["seed"]) == (0.9, 7)


async def test_stream_without_usage_request_hides_the_usage_chunk(gateway: Gateway, key: str) -> None:
    client = gateway.openai(key)
    async with client.chat.completions.with_streaming_response.create(
        model="chat-model", messages=PROMPT, stream=True
    ) as response:
        request_id = response.headers["x-request-id"]
        chunks = [chunk async for chunk in await response.parse()]
    for chunk in chunks:
        validate("CreateChatCompletionStreamResponse", chunk.model_dump(exclude_unset=True))
    assert all(chunk.choices for chunk in chunks), "the usage-only chunk must not reach this client"
    assert all(chunk.usage is None for chunk in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert len(text.split()) == 7
    # ...but the gateway asked the backend for usage, and recorded it.
    assert gateway.upstream.requests[-1].body["stream_options"] == {"include_usage": True}
    row = await gateway.usage(request_id)
    assert (row.prompt_tokens, row.completion_tokens, row.cost_nano_usd, row.streamed) == (12, 7, 6000, True)
    assert row.ttft_ms is not None and row.ttft_ms <= row.latency_ms


async def test_stream_with_usage_request_keeps_the_usage_chunk(gateway: Gateway, key: str) -> None:
    stream = await gateway.openai(key).chat.completions.create(
        model="chat-model", messages=PROMPT, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (12, 7)
    validate("CreateChatCompletionStreamResponse", chunks[-1].model_dump(exclude_unset=True))


async def test_stream_chunks_are_relayed_as_they_arrive(gateway: Gateway, key: str) -> None:
    # The fake upstream waits 200 ms between chunks; unbuffered relaying shows that spacing.
    loop = asyncio.get_running_loop()
    stream = await gateway.openai(key).chat.completions.create(model="slow-stream", messages=PROMPT, stream=True)
    arrivals = []
    async for _ in stream:
        arrivals.append(loop.time())
        if len(arrivals) == 4:
            break
    await stream.close()
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert all(gap > 0.1 for gap in gaps), gaps


async def test_client_disconnect_cancels_upstream_and_records_usage(gateway: Gateway, key: str) -> None:
    before = gateway.upstream.disconnects
    async with _raw_chat_stream(gateway, key, "slow-stream") as response:
        request_id = response.headers["x-request-id"]
        received = 0
        async for line in response.aiter_lines():
            received += line.startswith("data:")
            if received == 3:
                break
    for _ in range(100):
        if gateway.upstream.disconnects > before:
            break
        await asyncio.sleep(0.02)
    assert gateway.upstream.disconnects == before + 1, "the upstream stream must be cancelled"
    row = await gateway.usage(request_id)
    assert row.status_code == 499 and row.error_type == "client_disconnected"
    assert row.prompt_tokens > 0 and 0 < row.completion_tokens < 40
    assert row.cost_nano_usd > 0


async def test_upstream_breaking_mid_stream_is_reported_in_band(gateway: Gateway, key: str) -> None:
    client = gateway.openai(key)
    async with client.chat.completions.with_streaming_response.create(
        model="broken-stream", messages=PROMPT, stream=True
    ) as response:
        request_id = response.headers["x-request-id"]
        stream = await response.parse()
        received = 0
        try:
            async for _ in stream:
                received += 1
            raise AssertionError("the broken stream must raise")
        except openai.APIError as exc:
            assert "broke off" in str(exc)
    row = await gateway.usage(request_id)
    assert row.status_code == 502 and row.streamed


async def test_legacy_completions_plain_and_streamed(gateway: Gateway, key: str) -> None:
    client = gateway.openai(key)
    raw = await client.completions.with_raw_response.create(model="chat-model", prompt="Once upon a time")
    validate("CreateCompletionResponse", raw.http_response.json())
    row = await gateway.usage(raw.headers["x-request-id"])
    assert (row.endpoint, row.prompt_tokens, row.completion_tokens) == ("completions", 12, 7)
    stream = await client.completions.create(model="chat-model", prompt="Once upon a time", stream=True)
    text = "".join([chunk.choices[0].text async for chunk in stream if chunk.choices])
    assert len(text.split()) == 7


async def test_many_concurrent_requests_each_get_one_record(gateway: Gateway, key: str) -> None:
    client = gateway.openai(key)
    raws = await asyncio.gather(
        *[client.chat.completions.with_raw_response.create(model="chat-model", messages=PROMPT) for _ in range(50)]
    )
    ids = {raw.headers["x-request-id"] for raw in raws}
    assert len(ids) == 50
    for request_id in ids:
        assert len(await gateway.usage_rows(request_id)) == 1


async def test_sse_wire_format_is_plain_server_sent_events(gateway: Gateway, key: str) -> None:
    async with _raw_chat_stream(gateway, key, "chat-model") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        body = b"".join([part async for part in response.aiter_bytes()])
    events = [e for e in body.split(b"\n\n") if e]
    assert all(e.startswith(b"data: ") for e in events)
    assert events[-1] == b"data: [DONE]"


async def test_stream_ending_without_done_is_recorded_as_incomplete(gateway: Gateway, key: str) -> None:
    async with gateway.openai(key).chat.completions.with_streaming_response.create(
        model="no-done-stream", messages=PROMPT, stream=True
    ) as response:
        request_id = response.headers["x-request-id"]
        chunks = [chunk async for chunk in await response.parse()]
    assert chunks, "what the backend sent still reaches the client"
    row = await gateway.usage(request_id)
    assert (row.status_code, row.error_type) == (502, "incomplete_stream")


async def test_stream_request_answered_without_a_stream_is_502(gateway: Gateway, key: str) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        await gateway.openai(key).chat.completions.create(model="not-a-stream", messages=PROMPT, stream=True)
    assert caught.value.status_code == 502 and "without a stream" in caught.value.message


async def test_client_leaving_before_the_first_byte_cancels_upstream(gateway: Gateway, key: str) -> None:
    before = gateway.upstream.disconnects
    body = {"model": "slow-start", "messages": PROMPT, "stream": True}
    async with gateway.http() as http:
        request = http.post("/v1/chat/completions", headers={"authorization": f"Bearer {key}"}, json=body)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):  # the backend takes 3 s to its first byte
                await request
    for _ in range(100):
        if gateway.upstream.disconnects > before:
            break
        await asyncio.sleep(0.02)
    assert gateway.upstream.disconnects == before + 1, "the backend request must be cancelled at once"
    await gateway.runtime.ledger.flush()
    rows = await gateway.usage_rows_where(model="slow-start")
    assert [(r.status_code, r.error_type) for r in rows] == [(499, "ClientDisconnected")]


async def test_client_leaving_a_plain_request_cancels_the_backend_call(gateway: Gateway, key: str) -> None:
    """Not only streams: a client that gives up on a plain request stops its backend call at once."""
    before = gateway.upstream.abandoned
    body = {"model": "slow-start", "messages": PROMPT, "user": f"leaves-{gateway.mode}"}
    async with gateway.http() as http:
        request = http.post("/v1/chat/completions", headers={"authorization": f"Bearer {key}"}, json=body)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):  # the backend takes 3 s to answer
                await request
    await eventually(lambda: gateway.upstream.abandoned > before)
    rows = [r for r in await gateway.usage_rows_where(model="slow-start") if r.streamed is False]
    assert (rows[-1].status_code, rows[-1].error_type) == (499, "ClientDisconnected")
