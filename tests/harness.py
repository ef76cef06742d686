"""A real gateway on a real port, in front of the fake upstream: what every end-to-end test uses.

The gateway runs under uvicorn on the test event loop; the SDKs reach it over HTTP. Nothing of
ours is patched: the fake upstream is an HTTP server, and SQL is read back through SQLAlchemy.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import uvicorn
from fakes.fake_anthropic import FakeAnthropic
from fakes.fake_azure import FakeAzure
from fakes.fake_bedrock import FakeBedrock
from fakes.fake_gemini import FakeGemini
from fakes.fake_upstream import FakeUpstream
from leaks import watch_responses
from sqlalchemy import select

from gateway.app import create_app
from gateway.db.models import UsageRecord
from gateway.runtime import Runtime
from gateway.settings import Settings
from gateway.web.http_protocol import HttpProtocol

ADMIN_KEY = "test-admin-key"
ENCRYPTION_KEY = "dGVzdC1vbmx5LWZlcm5ldC1rZXktMzItYnl0ZXMhISE="
"""The Fernet key backend secrets stored through the admin API are encrypted under in the tests."""
KEY_CACHE_TTL = 1.0


async def eventually(condition: Callable[[], bool], within: float = 30.0) -> None:
    """Wait for something a background task brings about. The deadline is generous on purpose: a
    busy machine may be slow, and a test must not fail for that (nor pass by sleeping a fixed time)."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


POSTGRES_URL = os.environ.get(
    "GATEWAY_TEST_DATABASE_URL", "postgresql+asyncpg://gateway:gateway@127.0.0.1:5432/gateway_test"
)
REDIS_URL = os.environ.get("GATEWAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def models_yaml(
    upstream: str,
    anthropic: str = "http://127.0.0.1:9/v1",
    azure: str = "http://127.0.0.1:9",
    gemini: str = "http://127.0.0.1:9/v1beta",
    bedrock: str = "http://127.0.0.1:9",
) -> str:
    """Public model names mapped onto the fake upstreams' behaviour markers."""
    return f"""
backends:
  claude:
    kind: anthropic
    base_url: {anthropic}
    api_key: anthropic-secret-do-not-leak
  azure:
    kind: azure
    base_url: {azure}
    api_key: azure-secret-do-not-leak
  azure-entra:
    kind: azure
    base_url: {azure}
    entra:
      tenant_id: tenant-1
      client_id: gateway-app
      client_secret_env: GATEWAY_TEST_ENTRA_SECRET
      authority: {azure}
  gemini:
    kind: gemini
    base_url: {gemini}
    api_key: gemini-secret-do-not-leak
  bedrock:
    kind: bedrock
    base_url: {bedrock}
    region: us-east-1
  fake:
    kind: openai
    base_url: {upstream}
    api_key: upstream-secret-do-not-leak
  claude-impatient:
    kind: anthropic
    base_url: {anthropic}
    api_key: anthropic-secret-do-not-leak
    timeout_seconds: 0.5
  fake-impatient:
    kind: openai
    base_url: {upstream}
    timeout_seconds: 0.5
  nowhere:
    kind: openai
    base_url: http://127.0.0.1:{_closed_port()}/v1
models:
  chat-model:
    backend: fake
    upstream_model: fake-tokens-12-7
    prices: {{input: 150000, cached_input: 75000, output: 600000}}
  default-params:
    backend: fake
    upstream_model: fake-plain
    params: {{temperature: 0.25, seed: 7}}
  embed-model:
    backend: fake
    upstream_model: fake-embed
    prices: {{input: 20000}}
  slow-stream:
    backend: fake
    upstream_model: fake-chunkdelay-200-tokens-10-40
    prices: {{input: 1000000, output: 2000000}}
  slow-start:
    backend: fake
    upstream_model: fake-slow-3000
  broken-stream:
    backend: fake
    upstream_model: fake-streamerror
  no-done-stream:
    backend: fake
    upstream_model: fake-nodone
  not-a-stream:
    backend: fake
    upstream_model: fake-notsse
  upstream-500:
    backend: fake
    upstream_model: fake-error-500
  upstream-401:
    backend: fake
    upstream_model: fake-error-401
  upstream-429:
    backend: fake
    upstream_model: fake-error-429
  upstream-400:
    backend: fake
    upstream_model: fake-error-400
  hangs:
    backend: fake-impatient
    upstream_model: fake-hang
  unreachable:
    backend: nowhere
  claude-slow-count:
    backend: claude-impatient
    upstream_model: claude-slow-5000
  claude-model:
    backend: claude
    upstream_model: claude-fake-tokens-12-7
    params: {{max_tokens: 256}}
    prices: {{input: 3000000, cached_input: 300000, output: 15000000}}
  claude-cached:
    backend: claude
    upstream_model: claude-fake-cache-8-0
    prices: {{input: 3000000, cached_input: 300000, output: 15000000}}
  azure-model:
    backend: azure
    upstream_model: gpt4o-deploy-tokens-12-7
    prices: {{input: 150000, output: 600000}}
  gemini-model:
    backend: gemini
    upstream_model: gemini-fake-tokens-12-7
    prices: {{input: 100000, output: 400000}}
  bedrock-model:
    backend: bedrock
    upstream_model: anthropic.claude-fake-tokens-12-7-v1:0
    prices: {{input: 3000000, output: 15000000}}
  claude-overloaded:
    backend: claude
    upstream_model: claude-fake-error-529
  quota-rpm:
    backend: fake
    upstream_model: fake-tokens-12-7
  quota-tpm:
    backend: fake
    upstream_model: fake-tokens-12-7
  quota-user:
    backend: fake
    upstream_model: fake-tokens-12-7
  quota-budget:
    backend: fake
    upstream_model: fake-tokens-12-7
    prices: {{input: 1000000, output: 2000000}}
  quota-fail:
    backend: fake
    upstream_model: fake-error-500
  quota-slow:
    backend: fake
    upstream_model: fake-slow-1500-tokens-12-7
  dall-e-3:
    backend: fake
    prices: {{image: 40000}}
  gpt-image-1:
    backend: fake
    prices: {{input: 5000000, output: 40000000, image: 1000}}
  omni-moderation-latest:
    backend: fake
    prices: {{input: 10000}}
  tts-1:
    backend: fake
    prices: {{characters: 15000000}}
  tts-slow:
    backend: fake
    upstream_model: tts-chunkdelay-50
    prices: {{characters: 15000000}}
  gpt-4o-mini-tts:
    backend: fake
    prices: {{input: 600000, output: 12000000}}
  whisper-1:
    backend: fake
    prices: {{audio_second: 100}}
  whisper-broken:
    backend: fake
    upstream_model: whisper-error-400
    prices: {{audio_second: 100}}
  gpt-4o-transcribe:
    backend: fake
    prices: {{input: 2500000, output: 10000000}}
  azure-whisper:
    backend: azure
    upstream_model: whisper-deploy
    prices: {{audio_second: 100}}
  bedrock-cohere:
    backend: bedrock
    upstream_model: cohere.embed-english-v3
    prices: {{input: 100000}}
  azure-entra-model:
    backend: azure-entra
    upstream_model: gpt4o-deploy-tokens-12-7
    prices: {{input: 150000, output: 600000}}
  azure-tts:
    backend: azure
    upstream_model: tts-deploy
    prices: {{characters: 15000000}}
"""


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Fakes:
    """The fake upstreams of the other wire schemas."""

    anthropic: FakeAnthropic
    azure: FakeAzure
    gemini: FakeGemini
    bedrock: FakeBedrock


@dataclass
class Gateway:
    base_url: str
    upstream: FakeUpstream
    fakes: Fakes
    runtime: Runtime
    mode: str

    def openai(self, key: str, **kwargs: Any) -> openai.AsyncOpenAI:
        kwargs.setdefault("max_retries", 0)
        # The SDK's own HTTP client closes itself from a finalizer that may run in any test (deep
        # in a recursion-heavy one, say) and warn there; a plain one has no finalizer.
        kwargs.setdefault("http_client", openai.DefaultAsyncHttpxClient())
        return openai.AsyncOpenAI(base_url=self.base_url + "/v1", api_key=key, **kwargs)

    def anthropic(self, key: str) -> anthropic.AsyncAnthropic:
        http_client = anthropic.DefaultAsyncHttpxClient()  # no finalizer, as for openai() above
        return anthropic.AsyncAnthropic(base_url=self.base_url, api_key=key, max_retries=0, http_client=http_client)

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, timeout=30)

    async def create_key(self, name: str = "test", **kwargs: Any) -> str:
        return (await self.runtime.keys.create(name, **kwargs)).secret

    async def usage(self, request_id: str) -> UsageRecord:
        """The ledger row of one request, after the batched writer has flushed it."""
        for _ in range(100):
            await self.runtime.ledger.flush()
            async with self.runtime.sessions() as session:
                row = await session.scalar(select(UsageRecord).where(UsageRecord.request_id == request_id))
            if row is not None:
                return row
            await asyncio.sleep(0.02)  # a stream's record lands when its relay finishes
        raise AssertionError(f"no usage record for {request_id}")

    async def usage_rows_where(self, **columns: object) -> list[UsageRecord]:
        await self.runtime.ledger.flush()
        async with self.runtime.sessions() as session:
            rows = await session.scalars(select(UsageRecord).filter_by(**columns))
            return list(rows.all())

    async def usage_rows(self, request_id: str) -> list[UsageRecord]:
        await self.runtime.ledger.flush()
        async with self.runtime.sessions() as session:
            rows = await session.scalars(select(UsageRecord).where(UsageRecord.request_id == request_id))
            return list(rows.all())


@contextlib.asynccontextmanager
async def running_gateway(mode: str, tmp: Path, **overrides: Any) -> AsyncIterator[Gateway]:
    async with contextlib.AsyncExitStack() as fakes:
        upstream = await fakes.enter_async_context(FakeUpstream())
        anthropic = await fakes.enter_async_context(FakeAnthropic())
        azure = await fakes.enter_async_context(FakeAzure())
        gemini = await fakes.enter_async_context(FakeGemini())
        bedrock = await fakes.enter_async_context(FakeBedrock())
        models_file = tmp / "models.yaml"
        urls = (upstream.base_url, anthropic.base_url, azure.base_url, gemini.base_url, bedrock.base_url)
        models_file.write_text(models_yaml(*urls))
        settings = Settings.load(environ={}, overrides=_mode_settings(mode, tmp, models_file) | overrides)
        app = create_app(settings)
        server = uvicorn.Server(
            uvicorn.Config(
                watch_responses(app),
                host="127.0.0.1",
                port=0,
                log_level="warning",
                lifespan="on",
                loop="none",
                http=HttpProtocol,
            )
        )
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("gateway did not start")
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            fakes_seen = Fakes(anthropic, azure, gemini, bedrock)
            yield Gateway(f"http://127.0.0.1:{port}", upstream, fakes_seen, app.state.runtime, mode)
        finally:
            server.should_exit = True
            await task


def _mode_settings(mode: str, tmp: Path, models_file: Path) -> dict[str, Any]:
    common = {
        "data_dir": str(tmp / "data"),
        "models_file": str(models_file),
        "admin_key": ADMIN_KEY,
        "encryption_keys": ENCRYPTION_KEY,
        "key_cache_ttl_seconds": KEY_CACHE_TTL,
        "quota_refresh_seconds": 0.5,
    }
    if mode == "embedded":
        return common
    return common | {"database_url": POSTGRES_URL, "redis_url": REDIS_URL, "auto_migrate": True}
