"""Embeddings and the models list, through the openai SDK."""

from __future__ import annotations

import openai
import pytest
from harness import Gateway
from openai_spec import validate


async def test_embeddings_are_forwarded_and_priced(gateway: Gateway, key: str) -> None:
    client = gateway.openai(key)
    raw = await client.embeddings.with_raw_response.create(
        model="embed-model", input=["one two three", "four five"], encoding_format="float"
    )
    validate("CreateEmbeddingResponse", raw.http_response.json())
    result = raw.parse()
    assert len(result.data) == 2 and len(result.data[0].embedding) > 0
    row = await gateway.usage(raw.headers["x-request-id"])
    assert (row.endpoint, row.prompt_tokens, row.completion_tokens) == ("embeddings", 5, 0)
    assert row.cost_nano_usd == 100  # 5 tokens x $0.02/M = 100 nano-USD


async def test_embeddings_in_base64_as_the_sdk_asks_by_default(gateway: Gateway, key: str) -> None:
    result = await gateway.openai(key).embeddings.create(model="embed-model", input="hello")
    assert isinstance(result.data[0].embedding, list) and len(result.data[0].embedding) > 0


async def test_models_list_shows_every_model_to_an_unrestricted_key(gateway: Gateway, key: str) -> None:
    client = gateway.openai(key)
    raw = await client.models.with_raw_response.list()
    validate("ListModelsResponse", raw.http_response.json())
    ids = {model.id for model in raw.parse().data}
    assert {"chat-model", "embed-model", "slow-stream"} <= ids


async def test_models_list_and_lookup_respect_the_keys_models(gateway: Gateway) -> None:
    limited = gateway.openai(await gateway.create_key("embed-only", models=["embed-model"]))
    assert [m.id async for m in limited.models.list()] == ["embed-model"]
    model = await limited.models.retrieve("embed-model")
    validate("Model", model.model_dump())
    with pytest.raises(openai.NotFoundError):
        await limited.models.retrieve("chat-model")
    with pytest.raises(openai.AuthenticationError):
        await gateway.openai("sk-gw-wrong").models.list()
