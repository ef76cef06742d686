"""A Gemini backend behind the OpenAI API, reached with the openai SDK."""

from __future__ import annotations

from harness import Gateway
from openai_spec import validate

PROMPT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}]


async def test_gemini_plain_and_streamed_cost_the_same(gateway: Gateway, key: str) -> None:
    client = gateway.openai(key)
    raw = await client.chat.completions.with_raw_response.create(model="gemini-model", messages=PROMPT)
    validate("CreateChatCompletionResponse", raw.http_response.json())
    sent = gateway.fakes.gemini.requests[-1]
    assert sent.path.endswith("/models/gemini-fake-tokens-12-7:generateContent")
    assert sent.headers["x-goog-api-key"] == "gemini-secret-do-not-leak"
    assert sent.body["systemInstruction"]["parts"][0]["text"] == "Be brief."
    plain = await gateway.usage(raw.headers["x-request-id"])
    assert (plain.prompt_tokens, plain.completion_tokens) == (12, 7)

    async with client.chat.completions.with_streaming_response.create(
        model="gemini-model", messages=PROMPT, stream=True, stream_options={"include_usage": True}
    ) as response:
        request_id = response.headers["x-request-id"]
        chunks = [chunk async for chunk in await response.parse()]
    for chunk in chunks:
        validate("CreateChatCompletionStreamResponse", chunk.model_dump(exclude_unset=True))
    streamed = await gateway.usage(request_id)
    assert (streamed.prompt_tokens, streamed.completion_tokens, streamed.cost_nano_usd) == (
        plain.prompt_tokens,
        plain.completion_tokens,
        plain.cost_nano_usd,
    )
