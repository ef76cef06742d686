"""OpenAI's Responses API through the gateway, for OpenAI-compatible backends."""

from __future__ import annotations

import openai
import pytest
from harness import Gateway


async def test_responses_plain_and_streamed_are_metered_the_same(gateway: Gateway, key: str) -> None:
    client = gateway.openai(key)
    raw = await client.responses.with_raw_response.create(
        model="chat-model", input="Say hello", instructions="Be brief"
    )
    assert raw.parse().output_text
    assert "stream_options" not in gateway.upstream.requests[-1].body
    plain = await gateway.usage(raw.headers["x-request-id"])
    assert (plain.endpoint, plain.prompt_tokens, plain.completion_tokens, plain.cost_nano_usd) == (
        "responses",
        12,
        7,
        6000,
    )

    async with client.responses.with_streaming_response.create(
        model="chat-model", input="Say hello", stream=True
    ) as response:
        request_id = response.headers["x-request-id"]
        events = [event async for event in await response.parse()]
    assert events[-1].type == "response.completed"
    streamed = await gateway.usage(request_id)
    assert (streamed.prompt_tokens, streamed.completion_tokens, streamed.cost_nano_usd, streamed.streamed) == (
        12,
        7,
        6000,
        True,
    )


async def test_backends_without_the_responses_api_get_a_clear_400(gateway: Gateway, key: str) -> None:
    for model in ("claude-model", "gemini-model", "bedrock-model"):
        with pytest.raises(openai.BadRequestError, match="responses"):
            await gateway.openai(key).responses.create(model=model, input="hi")


async def test_azure_serves_the_responses_api_on_its_v1_path(gateway: Gateway, key: str) -> None:
    raw = await gateway.openai(key).responses.with_raw_response.create(model="azure-model", input="Say hello")
    assert raw.parse().output_text
    sent = gateway.fakes.azure.requests[-1]
    assert sent.path == "/openai/v1/responses" and sent.body["model"] == "gpt4o-deploy-tokens-12-7"
    assert sent.headers["api-key"] == "azure-secret-do-not-leak"
    row = await gateway.usage(raw.headers["x-request-id"])
    assert (row.prompt_tokens, row.completion_tokens, row.cost_nano_usd) == (
        12,
        7,
        (12 * 150_000 + 7 * 600_000) // 1000,
    )
    stream = await gateway.openai(key).responses.create(model="azure-model", input="Say hello", stream=True)
    assert [event.type async for event in stream][-1] == "response.completed"
