"""Anthropic-SDK clients: POST /v1/messages reaches any model, plain and streamed."""

from __future__ import annotations

import anthropic
import pytest
from harness import Gateway

MESSAGES = [{"role": "user", "content": "Say hello"}]


def _client(gateway: Gateway, key: str) -> anthropic.AsyncAnthropic:
    return gateway.anthropic(key)


@pytest.mark.parametrize("model", ["chat-model", "claude-model", "azure-model", "gemini-model", "bedrock-model"])
async def test_messages_reach_openai_and_anthropic_backends(gateway: Gateway, key: str, model: str) -> None:
    raw = await _client(gateway, key).messages.with_raw_response.create(
        model=model, max_tokens=100, system="Be brief.", messages=MESSAGES
    )
    message = await raw.parse()
    # Even an Anthropic backend's own message, passed through, names the model the client asked for.
    assert message.type == "message" and message.role == "assistant" and message.model == model
    assert message.content[0].type == "text" and message.content[0].text
    assert (message.usage.input_tokens, message.usage.output_tokens) == (12, 7)
    assert message.stop_reason == "end_turn"
    row = await gateway.usage(raw.headers["x-request-id"])
    assert (row.endpoint, row.prompt_tokens, row.completion_tokens, row.status_code) == ("messages", 12, 7, 200)


@pytest.mark.parametrize("model", ["chat-model", "claude-model", "azure-model", "gemini-model", "bedrock-model"])
async def test_streamed_messages_have_the_anthropic_event_sequence(gateway: Gateway, key: str, model: str) -> None:
    client = _client(gateway, key)
    async with client.messages.stream(model=model, max_tokens=100, messages=MESSAGES) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "content_block_delta" in kinds and "message_delta" in kinds
    assert len(final.content[0].text.split()) == 7  # type: ignore[union-attr]
    assert final.usage.output_tokens == 7


async def test_tool_use_round_trip_through_the_anthropic_sdk(gateway: Gateway, key: str) -> None:
    client = _client(gateway, key)
    tools = [{"name": "lookup", "description": "Look up", "input_schema": {"type": "object"}}]
    first = await client.messages.create(model="chat-model", max_tokens=100, messages=MESSAGES, tools=tools)  # type: ignore[arg-type]
    use = next(block for block in first.content if block.type == "tool_use")
    assert first.stop_reason == "tool_use" and use.name == "lookup"
    followup = [
        *MESSAGES,
        {"role": "assistant", "content": [use.model_dump()]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "42"}]},
    ]
    second = await client.messages.create(model="chat-model", max_tokens=100, messages=followup, tools=tools)  # type: ignore[arg-type]
    assert second.content[0].type == "text"
    sent = gateway.upstream.requests[-1].body["messages"]
    assert sent[-1]["role"] == "tool" and sent[-1]["tool_call_id"] == use.id


async def test_anthropic_sdk_errors(gateway: Gateway, key: str) -> None:
    with pytest.raises(anthropic.AuthenticationError):
        await _client(gateway, "sk-gw-" + "x" * 40).messages.create(model="chat-model", max_tokens=5, messages=MESSAGES)
    with pytest.raises(anthropic.NotFoundError) as missing:
        await _client(gateway, key).messages.create(model="no-such-model", max_tokens=5, messages=MESSAGES)
    assert missing.value.body["type"] == "error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError):
        await _client(gateway, key).messages.create(model="chat-model", max_tokens=5, messages=[])


async def test_count_tokens_is_exact_for_anthropic_backends_only(gateway: Gateway, key: str) -> None:
    client = _client(gateway, key)
    counted = await client.messages.count_tokens(model="claude-model", messages=MESSAGES, system="Be brief.")
    assert counted.input_tokens > 0
    assert gateway.fakes.anthropic.requests[-1].path == "/v1/messages/count_tokens"
    assert gateway.fakes.anthropic.requests[-1].body["model"] == "claude-fake-tokens-12-7"
    with pytest.raises(anthropic.BadRequestError, match="Anthropic backend"):
        await client.messages.count_tokens(model="chat-model", messages=MESSAGES)
    with pytest.raises(anthropic.AuthenticationError):
        await _client(gateway, "sk-gw-" + "y" * 40).messages.count_tokens(model="claude-model", messages=MESSAGES)


async def test_anthropic_backends_get_the_clients_request_untranslated(gateway: Gateway, key: str) -> None:
    """Fields with no OpenAI counterpart (thinking, cache_control, top_k, metadata) and the client's
    beta header reach an Anthropic backend as sent; only the model id and credential change."""
    client = _client(gateway, key)
    system = [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]
    raw = await client.messages.with_raw_response.create(
        model="claude-model",
        max_tokens=2048,
        system=system,  # type: ignore[arg-type]
        messages=MESSAGES,
        thinking={"type": "enabled", "budget_tokens": 1024},
        metadata={"user_id": "u-1"},
        extra_body={"top_k": 5},
        extra_headers={"anthropic-beta": "interleaved-thinking-2025-05-14"},
    )
    sent = gateway.fakes.anthropic.requests[-1]
    assert sent.body["model"] == "claude-fake-tokens-12-7" and sent.body["system"] == system
    assert sent.body["thinking"] == {"type": "enabled", "budget_tokens": 1024} and sent.body["top_k"] == 5
    assert sent.headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    assert sent.headers["x-api-key"] == "anthropic-secret-do-not-leak"
    assert key not in str(sent.headers)
    row = await gateway.usage(raw.headers["x-request-id"])
    assert (row.prompt_tokens, row.completion_tokens, row.cost_nano_usd) == (
        12,
        7,
        (12 * 3_000_000 + 7 * 15_000_000) // 1000,
    )


async def test_passthrough_streams_are_the_backends_events_and_metered_the_same(gateway: Gateway, key: str) -> None:
    async with gateway.http() as http:
        response = await http.post(
            "/v1/messages",
            headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
            json={"model": "claude-cached", "max_tokens": 100, "messages": MESSAGES, "stream": True},
        )
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    names = [line.split(": ", 1)[1] for line in response.text.splitlines() if line.startswith("event: ")]
    assert names[0] == "message_start" and names[-1] == "message_stop" and "ping" in names  # Anthropic's own
    streamed = await gateway.usage(response.headers["x-request-id"])
    plain = await _client(gateway, key).messages.with_raw_response.create(
        model="claude-cached", max_tokens=100, messages=MESSAGES
    )
    unstreamed = await gateway.usage(plain.headers["x-request-id"])
    columns = ("prompt_tokens", "cached_tokens", "cache_write_tokens", "completion_tokens", "cost_nano_usd")
    assert [getattr(streamed, c) for c in columns] == [getattr(unstreamed, c) for c in columns]
    assert streamed.cached_tokens == 8 and streamed.streamed


async def test_passthrough_errors_keep_anthropics_shape(gateway: Gateway, key: str) -> None:
    with pytest.raises(anthropic.InternalServerError) as caught:
        await _client(gateway, key).messages.create(model="claude-overloaded", max_tokens=10, messages=MESSAGES)
    assert caught.value.status_code == 503 and caught.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


async def test_count_tokens_waits_only_as_long_as_the_backend_allows(gateway: Gateway, key: str) -> None:
    """A side request obeys its backend's timeout_seconds (0.5 s here) like a metered one: 504."""
    with pytest.raises(anthropic.APIStatusError) as caught:
        await _client(gateway, key).messages.count_tokens(model="claude-slow-count", messages=MESSAGES)
    assert caught.value.status_code == 504
