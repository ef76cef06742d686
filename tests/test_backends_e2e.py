"""Every backend through the real SDKs: image input, a tool-call round trip, and the same usage and
cost whether a completion is streamed or not (the `openai` and `anthropic` clients alike)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from fakes.fake_server import FakeServer
from harness import Gateway

MODELS = ["chat-model", "azure-model", "claude-model", "gemini-model", "bedrock-model"]
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 24).decode()
TOOLS: Any = [
    {
        "type": "function",
        "function": {"name": "lookup", "description": "Look it up", "parameters": {"type": "object"}},
    }
]


def _fake(gateway: Gateway, model: str) -> FakeServer:
    fakes = gateway.fakes
    return {
        "chat-model": gateway.upstream,
        "azure-model": fakes.azure,
        "claude-model": fakes.anthropic,
        "gemini-model": fakes.gemini,
        "bedrock-model": fakes.bedrock,
    }[model]


def _image_in(model: str, body: dict[str, Any]) -> Any:
    """Where each wire schema carries the image of the last user message."""
    if model in ("chat-model", "azure-model"):
        return body["messages"][-1]["content"][1]["image_url"]["url"].split(",", 1)[1]
    if model == "claude-model":
        return body["messages"][-1]["content"][1]["source"]["data"]
    if model == "gemini-model":
        return body["contents"][-1]["parts"][1]["inlineData"]["data"]
    block = body["messages"][-1]["content"][1]["image"]  # Bedrock Converse: bytes, base64 in JSON
    assert block["format"] == "png"
    return block["source"]["bytes"]


@pytest.mark.parametrize("model", MODELS)
async def test_image_input_reaches_every_backend_in_its_own_schema(gateway: Gateway, key: str, model: str) -> None:
    content: Any = [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
    ]
    completion = await gateway.openai(key).chat.completions.create(
        model=model, messages=[{"role": "user", "content": content}]
    )
    assert completion.choices[0].message.content
    assert _image_in(model, _fake(gateway, model).requests[-1].body) == PNG


@pytest.mark.parametrize("model", MODELS)
async def test_tool_call_round_trip_on_every_backend(gateway: Gateway, key: str, model: str) -> None:
    client = gateway.openai(key)
    prompt: Any = [{"role": "user", "content": "Look up the answer"}]
    first = await client.chat.completions.create(model=model, messages=prompt, tools=TOOLS)
    assert first.choices[0].finish_reason == "tool_calls"
    [call] = first.choices[0].message.tool_calls or []
    assert call.function.name == "lookup"  # type: ignore[union-attr]
    followup = [
        *prompt,
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "42"},
    ]
    second = await client.chat.completions.create(model=model, messages=followup, tools=TOOLS)
    assert second.choices[0].finish_reason == "stop" and second.choices[0].message.content
    if model == "gemini-model":  # the SDK kept the call's thought signature, and Gemini got it back
        assert gateway.fakes.gemini.requests[-1].body["contents"][-2]["parts"][0]["thoughtSignature"]


@pytest.mark.parametrize("model", MODELS)
async def test_streamed_and_plain_completions_cost_the_same(gateway: Gateway, key: str, model: str) -> None:
    client = gateway.openai(key)
    prompt: Any = [{"role": "user", "content": "Say hello"}]
    plain = await client.chat.completions.with_raw_response.create(model=model, messages=prompt)
    async with client.chat.completions.with_streaming_response.create(
        model=model, messages=prompt, stream=True
    ) as response:
        [chunk async for chunk in await response.parse()]
        streamed_id = response.headers["x-request-id"]
    rows = [await gateway.usage(plain.headers["x-request-id"]), await gateway.usage(streamed_id)]
    columns = ("prompt_tokens", "cached_tokens", "cache_write_tokens", "completion_tokens", "cost_nano_usd")
    assert [getattr(rows[0], c) for c in columns] == [getattr(rows[1], c) for c in columns]
    assert rows[0].cost_nano_usd > 0 and (rows[0].streamed, rows[1].streamed) == (False, True)


@pytest.mark.parametrize("model", MODELS)
async def test_anthropic_sdk_image_input_reaches_every_backend(gateway: Gateway, key: str, model: str) -> None:
    client = gateway.anthropic(key)
    image: Any = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
    message = await client.messages.create(
        model=model,
        max_tokens=100,
        messages=[{"role": "user", "content": [{"type": "text", "text": "What is this?"}, image]}],
    )
    assert message.content[0].type == "text"
    assert _image_in(model, _fake(gateway, model).requests[-1].body) == PNG
