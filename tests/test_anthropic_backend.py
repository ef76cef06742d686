"""An Anthropic backend behind the OpenAI API: the openai SDK in, the Messages API out."""

from __future__ import annotations

import openai
import pytest
from harness import Gateway
from openai_spec import validate

PROMPT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}]
TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]


async def test_plain_chat_is_translated_priced_and_recorded(gateway: Gateway, key: str) -> None:
    raw = await gateway.openai(key).chat.completions.with_raw_response.create(model="claude-model", messages=PROMPT)
    validate("CreateChatCompletionResponse", raw.http_response.json())
    completion = raw.parse()
    assert completion.choices[0].message.content and completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (12, 7)

    sent = gateway.fakes.anthropic.requests[-1]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == "anthropic-secret-do-not-leak" and "anthropic-version" in sent.headers
    assert sent.body["system"] == "Be brief." and sent.body["max_tokens"] == 256  # the version's default
    assert sent.body["model"] == "claude-fake-tokens-12-7"

    row = await gateway.usage(raw.headers["x-request-id"])
    # 12 x $3/M + 7 x $15/M = $0.000141 = 141,000 nano-USD
    assert (row.prompt_tokens, row.completion_tokens, row.cost_nano_usd) == (12, 7, 141_000)


async def test_streaming_is_translated_and_costs_the_same(gateway: Gateway, key: str) -> None:
    client = gateway.openai(key)
    async with client.chat.completions.with_streaming_response.create(
        model="claude-model", messages=PROMPT, stream=True, stream_options={"include_usage": True}
    ) as response:
        request_id = response.headers["x-request-id"]
        chunks = [chunk async for chunk in await response.parse()]
    for chunk in chunks:
        validate("CreateChatCompletionStreamResponse", chunk.model_dump(exclude_unset=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(text.split()) == 7
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    streamed = await gateway.usage(request_id)
    plain = await client.chat.completions.with_raw_response.create(model="claude-model", messages=PROMPT)
    unstreamed = await gateway.usage(plain.headers["x-request-id"])
    assert (streamed.prompt_tokens, streamed.completion_tokens, streamed.cost_nano_usd) == (
        unstreamed.prompt_tokens,
        unstreamed.completion_tokens,
        unstreamed.cost_nano_usd,
    )
    assert streamed.streamed and not unstreamed.streamed


async def test_stream_without_usage_request_hides_usage(gateway: Gateway, key: str) -> None:
    stream = await gateway.openai(key).chat.completions.create(model="claude-model", messages=PROMPT, stream=True)
    chunks = [chunk async for chunk in stream]
    assert chunks and all(chunk.choices for chunk in chunks)


async def test_tool_call_round_trip(gateway: Gateway, key: str) -> None:
    client = gateway.openai(key)
    first = await client.chat.completions.create(model="claude-model", messages=PROMPT, tools=TOOLS)  # type: ignore[arg-type]
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert first.choices[0].finish_reason == "tool_calls" and call.function.name == "lookup"  # type: ignore[union-attr]
    followup = [
        *PROMPT,
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "42"},
    ]
    second = await client.chat.completions.create(model="claude-model", messages=followup, tools=TOOLS)  # type: ignore[arg-type]
    assert second.choices[0].message.content
    sent = gateway.fakes.anthropic.requests[-1].body["messages"]
    assert sent[-2]["content"][-1]["type"] == "tool_use"
    assert sent[-1]["role"] == "user" and sent[-1]["content"][0]["type"] == "tool_result"


async def test_cache_reads_are_priced_at_the_cached_rate(gateway: Gateway, key: str) -> None:
    raw = await gateway.openai(key).chat.completions.with_raw_response.create(model="claude-cached", messages=PROMPT)
    usage = raw.parse().usage
    assert usage is not None and usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 8
    row = await gateway.usage(raw.headers["x-request-id"])
    assert row.cached_tokens == 8 and row.prompt_tokens == usage.prompt_tokens


async def test_overloaded_anthropic_is_503_and_retryable(gateway: Gateway, key: str) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        await gateway.openai(key).chat.completions.create(model="claude-overloaded", messages=PROMPT)
    assert caught.value.status_code == 503 and caught.value.response.headers.get("retry-after")
    validate("ErrorResponse", caught.value.response.json())


async def test_endpoints_anthropic_lacks_are_a_clear_400(gateway: Gateway, key: str) -> None:
    with pytest.raises(openai.BadRequestError):
        await gateway.openai(key).embeddings.create(model="claude-model", input="hi")
