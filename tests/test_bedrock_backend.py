"""An AWS Bedrock model (Converse API, SigV4-signed) behind the OpenAI API."""

from __future__ import annotations

from harness import Gateway
from openai_spec import validate

PROMPT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}]


async def test_bedrock_plain_and_streamed_cost_the_same(gateway: Gateway, key: str) -> None:
    client = gateway.openai(key)
    raw = await client.chat.completions.with_raw_response.create(model="bedrock-model", messages=PROMPT)
    validate("CreateChatCompletionResponse", raw.http_response.json())
    sent = gateway.fakes.bedrock.requests[-1]
    assert sent.path.endswith("/converse") and sent.headers["authorization"].startswith("AWS4-HMAC-SHA256 ")
    plain = await gateway.usage(raw.headers["x-request-id"])
    assert (plain.prompt_tokens, plain.completion_tokens) == (12, 7)

    async with client.chat.completions.with_streaming_response.create(
        model="bedrock-model", messages=PROMPT, stream=True, stream_options={"include_usage": True}
    ) as response:
        request_id = response.headers["x-request-id"]
        chunks = [chunk async for chunk in await response.parse()]
    for chunk in chunks:
        validate("CreateChatCompletionStreamResponse", chunk.model_dump(exclude_unset=True))
    assert gateway.fakes.bedrock.requests[-1].path.endswith("/converse-stream")
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(text.split()) == 7
    streamed = await gateway.usage(request_id)
    assert (streamed.prompt_tokens, streamed.completion_tokens, streamed.cost_nano_usd) == (
        plain.prompt_tokens,
        plain.completion_tokens,
        plain.cost_nano_usd,
    )


async def test_cohere_embeddings_on_bedrock_embed_several_texts_and_are_counted(gateway: Gateway, key: str) -> None:
    raw = await gateway.openai(key).embeddings.with_raw_response.create(
        model="bedrock-cohere", input=["first text", "second text here"], encoding_format="float"
    )
    assert [item.index for item in raw.parse().data] == [0, 1]
    assert gateway.fakes.bedrock.requests[-1].body["texts"] == ["first text", "second text here"]
    row = await gateway.usage(raw.headers["x-request-id"])
    # Cohere on Bedrock reports no token count in its body: the gateway counts the input with o200k,
    # the texts joined by newlines ("first text\nsecond text here" is 6 tokens).
    assert row.prompt_tokens == 6 and row.cost_nano_usd == 600
