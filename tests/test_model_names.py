"""Replies name the model the client asked for (its public name), plain and streamed, on every
endpoint and for every backend kind; the backend's own id shows only for a model configured with
``reveal_upstream_model: true``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes.fake_anthropic import FakeAnthropic
from fakes.fake_upstream import FakeUpstream
from harness import Gateway, running_gateway

from gateway.catalog.config import parse_catalog_config
from gateway.errors import ConfigError
from gateway.proxy.model_name import ANTHROPIC, CHUNKS, RESPONSES, ModelRenamer, rename_body

PROMPT = [{"role": "user", "content": "Say hello"}]
BACKENDS = ["chat-model", "azure-model", "gemini-model", "bedrock-model", "claude-model"]


def _events(raw: bytes) -> list[dict[str, Any]]:
    lines = [line[5:].strip() for line in raw.split(b"\n") if line.startswith(b"data:")]
    return [json.loads(line) for line in lines if line != b"[DONE]"]


async def _post(gateway: Gateway, key: str, path: str, body: dict[str, Any]) -> httpx.Response:
    async with gateway.http() as http:
        response = await http.post(path, headers={"authorization": f"Bearer {key}"}, json=body)
    assert response.status_code == 200, response.text
    return response


def _upstream_id(gateway: Gateway, model: str) -> str:
    return gateway.runtime.pipeline.catalog.resolve(model).upstream_model


@pytest.mark.parametrize("model", BACKENDS)
async def test_chat_names_the_public_model_plain_and_streamed(gateway: Gateway, key: str, model: str) -> None:
    plain = await _post(gateway, key, "/v1/chat/completions", {"model": model, "messages": PROMPT})
    assert plain.json()["model"] == model
    streamed = await _post(gateway, key, "/v1/chat/completions", {"model": model, "messages": PROMPT, "stream": True})
    chunks = _events(streamed.content)
    assert chunks and {chunk["model"] for chunk in chunks} == {model}
    for reply in (plain.content, streamed.content):
        assert _upstream_id(gateway, model).encode() not in reply


@pytest.mark.parametrize(
    ("path", "model", "body"),
    [
        ("/v1/completions", "chat-model", {"prompt": "Say hello"}),
        ("/v1/completions", "azure-model", {"prompt": "Say hello"}),
        ("/v1/responses", "chat-model", {"input": "Say hello"}),
        ("/v1/responses", "azure-model", {"input": "Say hello"}),
    ],
)
async def test_completions_and_responses_name_the_public_model(
    gateway: Gateway, key: str, path: str, model: str, body: dict[str, Any]
) -> None:
    plain = await _post(gateway, key, path, {"model": model, **body})
    assert plain.json()["model"] == model
    streamed = await _post(gateway, key, path, {"model": model, **body, "stream": True})
    named = [event.get("model", event.get("response", {}).get("model")) for event in _events(streamed.content)]
    assert {name for name in named if name is not None} == {model}
    assert _upstream_id(gateway, model).encode() not in plain.content + streamed.content


@pytest.mark.parametrize("model", ["embed-model", "azure-model", "gemini-model", "bedrock-cohere"])
async def test_embeddings_name_the_public_model(gateway: Gateway, key: str, model: str) -> None:
    reply = await gateway.openai(key).embeddings.create(model=model, input=["a", "b"])
    assert reply.model == model


async def test_anthropic_passthrough_names_the_public_model(gateway: Gateway, key: str) -> None:
    client = gateway.anthropic(key)
    message = await client.messages.create(model="claude-model", max_tokens=20, messages=PROMPT)  # type: ignore[arg-type]
    assert message.model == "claude-model"
    async with client.messages.stream(model="claude-model", max_tokens=20, messages=PROMPT) as stream:  # type: ignore[arg-type]
        starts = [event.message.model async for event in stream if event.type == "message_start"]
    assert starts == ["claude-model"]


def _revealing(tmp: Path, upstream: FakeUpstream, anthropic: FakeAnthropic) -> str:
    path = tmp / "reveal.yaml"  # not models.yaml: running_gateway writes that one
    path.write_text(
        f"backends:\n  fake:\n    kind: openai\n    base_url: {upstream.base_url}\n"
        f"  claude:\n    kind: anthropic\n    base_url: {anthropic.base_url}\n    api_key: k\n"
        "models:\n"
        "  open:\n    backend: fake\n    upstream_model: fake-tokens-12-7\n    reveal_upstream_model: true\n"
        "  claude-open:\n    backend: claude\n    upstream_model: claude-fake-tokens-12-7\n"
        "    params: {max_tokens: 50}\n    reveal_upstream_model: true\n"
    )
    return str(path)


async def test_reveal_upstream_model_keeps_the_backends_id(tmp_path: Path) -> None:
    async with (
        FakeUpstream() as upstream,
        FakeAnthropic() as anthropic,
        running_gateway("embedded", tmp_path, models_file=_revealing(tmp_path, upstream, anthropic)) as gateway,
    ):
        key = await gateway.create_key("reveal")
        client = gateway.openai(key)
        plain = await client.chat.completions.create(model="open", messages=PROMPT)  # type: ignore[arg-type]
        assert plain.model == "fake-tokens-12-7"
        stream = await client.chat.completions.create(model="open", messages=PROMPT, stream=True)  # type: ignore[arg-type]
        assert {chunk.model async for chunk in stream} == {"fake-tokens-12-7"}
        messages = gateway.anthropic(key).messages
        assert (await messages.create(model="open", max_tokens=5, messages=PROMPT)).model == "fake-tokens-12-7"  # type: ignore[arg-type]
        passed = await messages.create(model="claude-open", max_tokens=5, messages=PROMPT)  # type: ignore[arg-type]
        assert passed.model == "claude-fake-tokens-12-7"
        async with messages.stream(model="open", max_tokens=5, messages=PROMPT) as events:  # type: ignore[arg-type]
            starts = [event.message.model async for event in events if event.type == "message_start"]
        assert starts == ["fake-tokens-12-7"]


def test_reveal_upstream_model_must_be_a_boolean() -> None:
    document = {"backends": {"b": {"kind": "openai", "base_url": "http://x/v1"}}}
    document["models"] = {"m": {"backend": "b", "reveal_upstream_model": "yes"}}  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match=r"models\.m\.reveal_upstream_model: expected true or false"):
        parse_catalog_config(document, "models.yaml")
    document["models"] = {"m": {"backend": "b", "reveal_upstream_model": True}}  # type: ignore[dict-item]
    assert parse_catalog_config(document, "models.yaml").models["m"].reveal_upstream_model


def _fed_in_pieces(renamer_kind: str, stream: bytes, size: int) -> bytes:
    renamer = ModelRenamer(renamer_kind, 'pub"lic')
    out = b"".join(renamer.feed(stream[start : start + size]) for start in range(0, len(stream), size))
    return out + renamer.close()


@pytest.mark.parametrize("size", [1, 7, 64, 100_000])
def test_streams_are_renamed_whatever_the_split(size: int) -> None:
    chunk = b'data: {"id":"c","model":"up-\\"id","choices":[{"delta":{"content":"say \\"model\\":\\"x\\""}}]}\n\n'
    out = _fed_in_pieces(CHUNKS, chunk * 3 + b"data: [DONE]\n\n", size)
    assert [event["model"] for event in _events(out)] == ['pub"lic'] * 3
    assert [event["choices"][0]["delta"]["content"] for event in _events(out)] == ['say "model":"x"'] * 3

    # Responses: only the response's own model changes, not a tool's.
    tool = {"type": "image_generation", "model": "gpt-image-1"}
    created = {"type": "response.created", "response": {"id": "r", "model": "up", "tools": [tool]}}
    events = b"event: response.created\r\ndata: " + json.dumps(created).encode() + b"\r\n\r\n"
    (event,) = _events(_fed_in_pieces(RESPONSES, events, size))
    assert event["response"]["model"] == 'pub"lic' and event["response"]["tools"] == [tool]

    start = {"type": "message_start", "message": {"id": "m", "model": "claude-up", "content": []}}
    events = b"event: message_start\ndata: " + json.dumps(start).encode() + b"\n\n"
    (event,) = _events(_fed_in_pieces(ANTHROPIC, events, size))
    assert event["message"]["model"] == 'pub"lic'


def test_chunk_streams_rename_every_chunk_even_when_the_backend_changes_its_id() -> None:
    renamer = ModelRenamer(CHUNKS, "pub")
    chunks = [
        b'data: {"model":"a","choices":[]}\n\n',
        b'data: {"id":"x","model":"a","choices":[]}\n\n',
        b'data: {"id":"x","model":"b","choices":[]}\n\n',  # not the id seen so far
        b'data: {"id":"x","say \\"model":"a","model":"a"}\n\n',  # a key whose text ends in \"model
        b'data: {"id":"x", "model": "a"}\n\n',
    ]
    events = [json.loads(renamer.feed(chunk)[6:]) for chunk in chunks]
    assert [event["model"] for event in events] == ["pub"] * 5
    assert events[3]['say "model'] == "a"


def test_plain_replies_rename_the_top_level_model_only() -> None:
    assert json.loads(rename_body(b'{"id": "x", "model" : "up", "n": 1}', "pub"))["model"] == "pub"
    nested = {"model": "up", "tools": [{"model": "gpt-image-1"}], "content": [{"input": {"model": "m"}}]}
    renamed = json.loads(rename_body(json.dumps(nested).encode(), "pub"))
    assert renamed == {**nested, "model": "pub"}
    only_nested = json.dumps({"data": [{"model": "kept"}]}).encode()
    assert rename_body(only_nested, "pub") == only_nested
    assert rename_body(b"not json", "pub") == b"not json"
