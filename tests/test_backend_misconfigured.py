"""A backend that answers 404 for the URL itself (a base_url missing its /v1, say) is the gateway's
misconfiguration: the client gets a 502 naming the backend and the path, not a 404 that looks like
its own mistake. A backend's OpenAI-shaped 404 about what the request named still passes through."""

from __future__ import annotations

import uuid
from pathlib import Path

import anthropic
import openai
import pytest
from fakes.fake_upstream import FakeUpstream
from harness import running_gateway

from gateway.catalog.registry import BackendTarget, ModelRoute, Prices
from gateway.errors import UpstreamError, UpstreamRejected
from gateway.providers.azure import AzureOpenAIAdapter
from gateway.providers.openai import OpenAIAdapter

PROMPT = [{"role": "user", "content": "Say hello"}]


def _models(tmp: Path, upstream: FakeUpstream) -> str:
    path = tmp / "no-v1.yaml"  # not models.yaml: running_gateway writes that one
    path.write_text(
        "backends:\n"
        f"  no-v1:\n    kind: openai\n    base_url: {upstream.root_url}\n"
        f"  right:\n    kind: openai\n    base_url: {upstream.base_url}\n"
        "models:\n"
        "  lost:\n    backend: no-v1\n    upstream_model: fake-tokens-12-7\n"
        "  lost-embed:\n    backend: no-v1\n    upstream_model: fake-embed\n"
        "  absent:\n    backend: right\n    upstream_model: fake-error-404\n"
    )
    return str(path)


def _assert_misconfigured(error: openai.APIStatusError, path: str) -> None:
    assert error.status_code == 502
    body = error.body
    assert isinstance(body, dict) and body["code"] == "backend_misconfigured"
    assert "'no-v1'" in body["message"] and path in body["message"] and "/v1" in body["message"]


async def test_a_base_url_missing_v1_is_a_502_that_says_so(tmp_path: Path) -> None:
    async with (
        FakeUpstream() as upstream,
        running_gateway("embedded", tmp_path, models_file=_models(tmp_path, upstream)) as gateway,
    ):
        key = await gateway.create_key("misconfigured")
        client = gateway.openai(key)
        with pytest.raises(openai.APIStatusError) as plain:
            await client.chat.completions.create(model="lost", messages=PROMPT)  # type: ignore[arg-type]
        _assert_misconfigured(plain.value, "/chat/completions")
        with pytest.raises(openai.APIStatusError) as streamed:
            await client.chat.completions.create(model="lost", messages=PROMPT, stream=True)  # type: ignore[arg-type]
        _assert_misconfigured(streamed.value, "/chat/completions")
        with pytest.raises(openai.APIStatusError) as embedded:
            await client.embeddings.create(model="lost-embed", input="x")
        _assert_misconfigured(embedded.value, "/embeddings")
        assert upstream.requests[-1].path == "/embeddings"  # it was asked, at the wrong URL
        row = await gateway.usage(plain.value.response.headers["x-request-id"])
        assert (row.status_code, row.error_type) == (502, "UpstreamError")

        with pytest.raises(anthropic.APIStatusError) as messages:
            await gateway.anthropic(key).messages.create(model="lost", max_tokens=5, messages=PROMPT)  # type: ignore[arg-type]
        assert messages.value.status_code == 502 and "does base_url end in /v1?" in messages.value.message

        # The backend's own 404 about the model it lacks is the client's to see.
        with pytest.raises(openai.NotFoundError) as absent:
            await client.chat.completions.create(model="absent", messages=PROMPT)  # type: ignore[arg-type]
        assert absent.value.code == "model_not_found"


def _route(kind: str) -> ModelRoute:
    backend = BackendTarget(uuid.uuid4(), "local", kind, "http://127.0.0.1:9100", None, {}, "2024-10-21")
    return ModelRoute("m", uuid.uuid4(), uuid.uuid4(), 1, backend, "m-upstream", {}, Prices(), 0)


NOT_AN_API = [
    b"<html><body><h1>404 Not Found</h1></body></html>",
    b"404 page not found",  # Ollama, Go's default
    b'{"detail":"Not Found"}',  # vLLM and other FastAPI servers
    b"",
    b'{"error":{"code":404,"message":"File Not Found","type":"not_found_error"}}',  # llama.cpp's server
    b'{"error":{"message":"Invalid URL (POST /chat/completions)","type":"invalid_request_error",'
    b'"param":null,"code":null}}',  # OpenAI's own
]


@pytest.mark.parametrize("body", NOT_AN_API)
def test_a_404_for_the_url_is_the_backends_misconfiguration(body: bytes) -> None:
    url = "http://127.0.0.1:9100/chat/completions"
    error = OpenAIAdapter().error(_route("openai"), 404, body, None, url)
    assert isinstance(error, UpstreamError) and error.code == "backend_misconfigured"
    assert error.message.startswith("Backend 'local' has no /chat/completions") and "/v1?" in error.message


@pytest.mark.parametrize(
    "body",
    [
        b'{"error":{"message":"The model `m` does not exist","type":"invalid_request_error",'
        b'"param":null,"code":"model_not_found"}}',
        b'{"error":{"message":"Previous response not found.","type":"invalid_request_error",'
        b'"param":"previous_response_id","code":"previous_response_not_found"}}',
        b'{"error":"model \\"m\\" not found, try pulling it first"}',  # Ollama
        # vLLM
        b'{"object":"error","message":"The model `m` does not exist.","type":"NotFoundError","param":null,"code":404}',
    ],
)
def test_a_404_about_what_was_asked_passes_through(body: bytes) -> None:
    error = OpenAIAdapter().error(_route("openai"), 404, body, None, "http://127.0.0.1:9100/v1/chat/completions")
    assert isinstance(error, UpstreamRejected) and error.status == 404


def test_azure_a_404_that_is_not_azures_is_misconfiguration() -> None:
    url = "http://127.0.0.1:9100/openai/openai/deployments/m-upstream/chat/completions?api-version=2024-10-21"
    error = AzureOpenAIAdapter().error(_route("azure"), 404, b"<html>Not Found</html>", None, url)
    assert isinstance(error, UpstreamError) and error.code == "backend_misconfigured"
    assert (
        "/openai/openai/deployments/m-upstream/chat/completions" in error.message and "api-version" not in error.message
    )
    azures = b'{"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist."}}'
    error = AzureOpenAIAdapter().error(_route("azure"), 404, azures, None, url)
    assert isinstance(error, UpstreamError) and error.code == "backend_deployment_not_found"
