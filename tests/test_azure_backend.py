"""An Azure OpenAI deployment behind the gateway, reached with the openai SDK."""

from __future__ import annotations

from harness import Gateway
from openai_spec import validate

PROMPT = [{"role": "user", "content": "Say hello"}]


async def test_azure_deployment_plain_and_streamed(gateway: Gateway, key: str) -> None:
    client = gateway.openai(key)
    raw = await client.chat.completions.with_raw_response.create(model="azure-model", messages=PROMPT)
    validate("CreateChatCompletionResponse", raw.http_response.json())
    sent = gateway.fakes.azure.requests[-1]
    assert sent.path == "/openai/deployments/gpt4o-deploy-tokens-12-7/chat/completions"
    assert "api-version=" in sent.query and sent.headers["api-key"] == "azure-secret-do-not-leak"
    row = await gateway.usage(raw.headers["x-request-id"])
    assert (row.prompt_tokens, row.completion_tokens, row.cost_nano_usd) == (12, 7, 6000)

    stream = await client.chat.completions.create(model="azure-model", messages=PROMPT, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert len(text.split()) == 7
