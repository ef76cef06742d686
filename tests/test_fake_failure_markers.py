"""The fakes' failure markers for routing tests (contextlen, contentfilter, retryafter, flaky,
firstbyte, hangstream), exercised directly over HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fakes.fake_anthropic import FakeAnthropic
from fakes.fake_azure import FakeAzure
from fakes.fake_markers import CONTENT_FILTER, CONTEXT_LENGTH, Behaviour, parse_behaviour
from fakes.fake_upstream import FakeUpstream

Json = dict[str, Any]
ANTHROPIC_HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream() as upstream:
        yield upstream


@pytest.fixture
async def client(fake: FakeUpstream) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.base_url, timeout=10) as http:
        yield http


def chat(model: str, **extra: Any) -> Json:
    return {"model": model, "messages": [{"role": "user", "content": "hello there"}], **extra}


def claude(model: str, **extra: Any) -> Json:
    return {"model": model, "max_tokens": 20, "messages": [{"role": "user", "content": "Hello"}], **extra}


async def eventually(predicate: Any, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def data_lines(response: httpx.Response) -> AsyncIterator[tuple[float, str]]:
    """(arrival time, line) for each `data:` line of an SSE response."""
    async for line in response.aiter_lines():
        if line.startswith("data: "):
            yield time.monotonic(), line


# -- parsing ---------------------------------------------------------------------------------------


def test_new_markers_parse_and_old_ones_still_do() -> None:
    assert parse_behaviour("gpt-contextlen") == Behaviour(error_status=400, error_kind=CONTEXT_LENGTH)
    assert parse_behaviour("gpt-ContentFilter") == Behaviour(error_status=400, error_kind=CONTENT_FILTER)
    assert parse_behaviour("gpt-error-503-contextlen").error_kind == CONTEXT_LENGTH  # the specific one wins
    assert parse_behaviour("gpt-error-429-retryafter-7") == Behaviour(error_status=429, retry_after=7)
    assert parse_behaviour("GPT-Flaky-2") == Behaviour(flaky=("gpt-flaky-2", 2))
    assert parse_behaviour("gpt-firstbyte-300-chunkdelay-20") == Behaviour(first_byte_ms=300, chunk_delay_ms=20)
    assert parse_behaviour("gpt-hangstream") == Behaviour(hang_stream=True)  # not `hang`
    assert parse_behaviour("gpt-hang-hangstream") == Behaviour(hang=True, hang_stream=True)
    # Only at word boundaries, as before.
    for name in ("xcontextlen", "contextlength", "nocontentfilter", "myflaky-2", "pfirstbyte-5", "noretryafter-1"):
        assert parse_behaviour(name) == Behaviour(), name
    assert parse_behaviour("fake-streamerror") == Behaviour(stream_error=True)
    assert parse_behaviour("x-nodone-notsse") == Behaviour(no_done=True, not_sse=True)
    assert parse_behaviour("Fake-Slow-50-chunkdelay-7-error-502-hang-tokens-3-4") == Behaviour(
        slow_ms=50, chunk_delay_ms=7, error_status=502, hang=True, tokens=(3, 4)
    )


# -- contextlen and contentfilter ------------------------------------------------------------------


async def test_contextlen_is_openais_400(client: httpx.AsyncClient) -> None:
    for path, body in [
        ("/chat/completions", chat("gpt-contextlen")),
        ("/chat/completions", chat("gpt-contextlen", stream=True)),
        ("/completions", {"model": "gpt-contextlen", "prompt": "hi"}),
        ("/embeddings", {"model": "emb-contextlen", "input": "hi"}),
    ]:
        response = await client.post(path, json=body)
        assert response.status_code == 400 and response.headers["content-type"] == "application/json"
        error = response.json()["error"]
        assert error["code"] == "context_length_exceeded" and error["type"] == "invalid_request_error"
        assert error["param"] == "messages"
        assert error["message"].startswith("This model's maximum context length is 8192 tokens. However,")
        assert "retry-after" not in response.headers


async def test_contentfilter_is_azures_400(client: httpx.AsyncClient) -> None:
    for body in (chat("gpt-contentfilter"), chat("gpt-contentfilter", stream=True)):
        response = await client.post("/chat/completions", json=body)
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "content_filter" and error["param"] == "prompt" and error["status"] == 400
        assert error["message"].startswith(
            "The response was filtered due to the prompt triggering Azure OpenAI's content management policy."
        )
        assert error["innererror"]["code"] == "ResponsibleAIPolicyViolation"
        assert error["innererror"]["content_filter_result"]["violence"] == {"filtered": True, "severity": "medium"}


async def test_contentfilter_in_an_azure_deployment_name() -> None:
    async with FakeAzure() as azure, httpx.AsyncClient(base_url=azure.root_url, timeout=10) as http:
        response = await http.post(
            "/openai/deployments/gpt-contentfilter/chat/completions?api-version=2024-10-21",
            json=chat("ignored"),
            headers={"api-key": "k"},
        )
    assert response.status_code == 400
    assert response.json()["error"]["innererror"]["code"] == "ResponsibleAIPolicyViolation"


# -- retryafter ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "status", "retry_after"),
    [
        ("gpt-error-429", 429, "1"),
        ("gpt-error-429-retryafter-7", 429, "7"),
        ("gpt-retryafter-0-error-429", 429, "0"),
        ("gpt-error-503", 503, None),
        ("gpt-error-503-retryafter-2", 503, "2"),
        ("gpt-error-500-retryafter-3", 500, None),  # only 429 and 503 carry it
        ("gpt-retryafter-3", 200, None),
    ],
)
async def test_retryafter(client: httpx.AsyncClient, model: str, status: int, retry_after: str | None) -> None:
    for body in (chat(model), chat(model, stream=True)):
        response = await client.post("/chat/completions", json=body)
        assert response.status_code == status
        assert response.headers.get("retry-after") == retry_after


async def test_anthropic_retryafter_and_contextlen() -> None:
    async with FakeAnthropic() as fake, httpx.AsyncClient(base_url=fake.base_url, timeout=10) as http:
        overloaded = await http.post("/messages", json=claude("c-error-503-retryafter-4"), headers=ANTHROPIC_HEADERS)
        limited = await http.post("/messages", json=claude("c-error-429"), headers=ANTHROPIC_HEADERS)
        too_long = await http.post("/messages", json=claude("c-contextlen"), headers=ANTHROPIC_HEADERS)
    assert overloaded.status_code == 503 and overloaded.headers["retry-after"] == "4"
    assert limited.status_code == 429 and limited.headers["retry-after"] == "1"
    assert too_long.status_code == 400
    assert too_long.json()["error"] == {
        "type": "invalid_request_error",
        "message": "prompt is too long: 200001 tokens > 200000 maximum",
    }


# -- flaky -----------------------------------------------------------------------------------------


async def statuses(client: httpx.AsyncClient, model: str, count: int, **extra: Any) -> list[int]:
    return [(await client.post("/chat/completions", json=chat(model, **extra))).status_code for _ in range(count)]


async def test_flaky_fails_the_first_requests_then_succeeds(client: httpx.AsyncClient) -> None:
    assert await statuses(client, "gpt-flaky-2", 4) == [503, 503, 200, 200]
    response = await client.post("/chat/completions", json=chat("gpt-flaky-2"))
    assert response.json()["choices"][0]["message"]["content"] == "This is a fake reply from the upstream."
    # Another name has its own count; case does not make another name.
    assert await statuses(client, "other-flaky-1", 2) == [503, 200]
    assert await statuses(client, "GPT-FLAKY-3", 1) == [503]
    assert await statuses(client, "Gpt-Flaky-3", 3) == [503, 503, 200]
    # Streams and other endpoints count too; a stream's failure is a plain JSON error.
    assert await statuses(client, "s-flaky-1", 2, stream=True) == [503, 200]
    embedded = [(await client.post("/embeddings", json={"model": "gpt-flaky-3", "input": "x"})).status_code]
    assert embedded == [200]  # the 4th request for "gpt-flaky-3"


async def test_flaky_counts_reset_with_the_stats(client: httpx.AsyncClient, fake: FakeUpstream) -> None:
    assert await statuses(client, "gpt-flaky-1", 2) == [503, 200]
    assert (await client.delete(f"{fake.root_url}/_fake/stats")).status_code == 200
    assert await statuses(client, "gpt-flaky-1", 2) == [503, 200]
    fake.reset()
    assert await statuses(client, "gpt-flaky-1", 1) == [503]


async def test_flaky_counts_per_server(client: httpx.AsyncClient) -> None:
    assert await statuses(client, "gpt-flaky-1", 1) == [503]
    async with FakeUpstream() as other, httpx.AsyncClient(base_url=other.base_url, timeout=10) as http:
        assert await statuses(http, "gpt-flaky-1", 2) == [503, 200]
    assert await statuses(client, "gpt-flaky-1", 1) == [200]


async def test_flaky_with_other_failure_markers(client: httpx.AsyncClient) -> None:
    body = chat("gpt-flaky-1-error-429-retryafter-3")
    first, second = [await client.post("/chat/completions", json=body) for _ in range(2)]
    assert (first.status_code, first.headers["retry-after"]) == (429, "3")
    assert second.status_code == 200 and "retry-after" not in second.headers
    assert await statuses(client, "gpt-flaky-1-retryafter-5", 1) == [503]  # the default failure takes it too
    too_long = await client.post("/chat/completions", json=chat("gpt-flaky-1-contextlen"))
    assert too_long.json()["error"]["code"] == "context_length_exceeded"
    assert await statuses(client, "gpt-flaky-1-contextlen", 1) == [200]
    # Usage markers stay once it has healed.
    assert await statuses(client, "t-flaky-1-tokens-5-3", 1) == [503]
    usage = (await client.post("/chat/completions", json=chat("t-flaky-1-tokens-5-3"))).json()["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (5, 3)


async def test_flaky_hangstream_stalls_only_the_first_stream(client: httpx.AsyncClient) -> None:
    body = chat("gpt-flaky-1-hangstream", stream=True)
    async with client.stream("POST", "/chat/completions", json=body) as stalled:
        lines = data_lines(stalled)
        await anext(lines)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(lines), 0.5)
    async with client.stream("POST", "/chat/completions", json=body) as healed:
        assert [line async for _, line in data_lines(healed)][-1] == "data: [DONE]"


async def test_flaky_in_the_anthropic_fake() -> None:
    async with FakeAnthropic() as fake, httpx.AsyncClient(base_url=fake.base_url, timeout=10) as http:
        replies = [await http.post("/messages", json=claude("c-flaky-2"), headers=ANTHROPIC_HEADERS) for _ in range(3)]
        codes = [reply.status_code for reply in replies]
    assert codes == [503, 503, 200]


# -- firstbyte -------------------------------------------------------------------------------------


async def test_firstbyte_delays_the_first_event_not_the_headers(client: httpx.AsyncClient) -> None:
    # 600 ms, so that the client may be late reading the headers by 350 ms and still see the gap.
    body = chat("gpt-firstbyte-600-chunkdelay-50-tokens-1-2", stream=True)
    started = time.monotonic()
    async with client.stream("POST", "/chat/completions", json=body) as response:
        headers_at = time.monotonic()
        assert response.status_code == 200
        arrivals = [at async for at, _ in data_lines(response)]
    assert len(arrivals) == 5  # role, 2 words, finish, [DONE]
    assert arrivals[0] - headers_at >= 0.25
    assert arrivals[-1] - started >= 0.6 + 4 * 0.05 - 0.01  # then the other four at chunkdelay


async def test_firstbyte_delays_a_plain_body(client: httpx.AsyncClient) -> None:
    async with client.stream("POST", "/chat/completions", json=chat("gpt-firstbyte-600")) as response:
        headers_at = time.monotonic()
        assert response.status_code == 200
        payload = await response.aread()
        assert time.monotonic() - headers_at >= 0.25
    assert int(response.headers["content-length"]) == len(payload)
    assert response.json()["object"] == "chat.completion"
    # The next request on the same keep-alive connection is answered as usual.
    assert (await client.post("/chat/completions", json=chat("gpt"))).status_code == 200


async def test_firstbyte_applies_to_errors_and_to_anthropic(client: httpx.AsyncClient) -> None:
    async with client.stream("POST", "/chat/completions", json=chat("gpt-firstbyte-600-error-503")) as response:
        headers_at = time.monotonic()
        assert response.status_code == 503
        await response.aread()
        assert time.monotonic() - headers_at >= 0.25
    async with FakeAnthropic() as fake, httpx.AsyncClient(base_url=fake.base_url, timeout=10) as http:
        body = claude("c-firstbyte-600", stream=True)
        async with http.stream("POST", "/messages", json=body, headers=ANTHROPIC_HEADERS) as streamed:
            headers_at = time.monotonic()
            first, _ = await anext(data_lines(streamed))
    assert first - headers_at >= 0.25


# -- hangstream ------------------------------------------------------------------------------------


async def test_hangstream_sends_one_event_then_nothing(client: httpx.AsyncClient, fake: FakeUpstream) -> None:
    async with client.stream("POST", "/chat/completions", json=chat("gpt-hangstream", stream=True)) as response:
        assert response.status_code == 200
        lines = data_lines(response)
        _, first = await anext(lines)
        assert '"role":"assistant"' in first
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(lines), 0.5)
        # The fake goes on answering other requests meanwhile.
        async with httpx.AsyncClient(base_url=fake.base_url, timeout=10) as other:
            assert (await other.post("/chat/completions", json=chat("gpt"))).status_code == 200
    # Closing the response drops the connection: the fake notices and stops.
    await eventually(lambda: fake.disconnects == 1)
    assert fake.completed_streams == 0 and fake.abandoned == 1


async def test_hangstream_on_a_plain_request_sends_only_headers(client: httpx.AsyncClient) -> None:
    async with client.stream("POST", "/chat/completions", json=chat("gpt-hangstream")) as response:
        assert response.status_code == 200 and int(response.headers["content-length"]) > 0
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(response.aread(), 0.5)


async def test_stopping_the_server_ends_a_stalled_stream() -> None:
    upstream = FakeUpstream()
    await upstream.start()
    async with httpx.AsyncClient(base_url=upstream.base_url, timeout=10) as http:
        body = chat("gpt-hangstream", stream=True)
        async with http.stream("POST", "/chat/completions", json=body) as response:
            lines = data_lines(response)
            await anext(lines)
            await asyncio.wait_for(upstream.stop(), 5)
            with pytest.raises(httpx.TransportError):
                await asyncio.wait_for(anext(lines), 5)
    assert not upstream.connections
