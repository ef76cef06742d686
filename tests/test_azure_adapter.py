"""The Azure OpenAI adapter: golden upstream requests, Azure-shaped streams and errors, and the
adapter against `FakeAzure` over real HTTP.

Golden files live in ``tests/golden/azure/``:

* ``*.request.json``: ``{"endpoint", "deployment", "api_version", "params", "openai": client body,
  "azure": {"url", "headers", "body"}}`` for a backend at ``https://myres.openai.azure.com``;
* ``*.response.json``: ``{"azure": reply, "usage": [p, c, cached]}`` (the reply passes unchanged);
* ``*.stream.json``: ``{"azure_sse": raw stream, "usage", "finished", "forwarded_with_usage",
  "forwarded_without_usage"}``: the data payloads the client gets, in order, when it did or did not
  ask for usage itself (``[DONE]`` as a string).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes.fake_azure import FakeAzure

from gateway.catalog.registry import BackendTarget, ModelRoute, Prices
from gateway.errors import UpstreamError, UpstreamRejected
from gateway.providers.azure import AzureOpenAIAdapter
from gateway.providers.credentials import StaticKey
from gateway.providers.openai import OpenAIAdapter
from gateway.wire.endpoints import CHAT, COMPLETIONS, EMBEDDINGS, Endpoint
from gateway.wire.usage import Usage

GOLDEN = Path(__file__).parent / "golden" / "azure"
REQUEST_CASES = sorted(p.name for p in GOLDEN.glob("*.request.json"))
RESPONSE_CASES = sorted(p.name for p in GOLDEN.glob("*.response.json"))
STREAM_CASES = sorted(p.name for p in GOLDEN.glob("*.stream.json"))
ENDPOINTS = {e.name: e for e in (CHAT, COMPLETIONS, EMBEDDINGS)}
RESOURCE = "https://myres.openai.azure.com"
MESSAGES = [{"role": "user", "content": "one two three"}]


class _Headers:
    """Credentials that add the given headers (none, or an Entra ID bearer token)."""

    def __init__(self, headers: dict[str, str]) -> None:
        self._headers = headers

    def authorize(self, url: str, headers: dict[str, str], body: bytes | None) -> dict[str, str]:
        return {**headers, **self._headers}


def _route(
    deployment: str = "gpt-4o",
    *,
    base_url: str = RESOURCE,
    api_version: str | None = "2024-10-21",
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> ModelRoute:
    backend = BackendTarget(
        uuid.uuid4(),
        "azure-eu",
        "azure",
        base_url,
        None,
        credentials=StaticKey("api-key", "k") if headers is None else _Headers(headers),
        api_version=api_version,
    )
    return ModelRoute(
        model="assistant",
        model_id=uuid.uuid4(),
        version_id=uuid.uuid4(),
        version=1,
        backend=backend,
        upstream_model=deployment,
        params=params or {},
        prices=Prices(),
        created=0,
    )


def _golden(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((GOLDEN / name).read_text(encoding="utf-8"))
    return loaded


def _payloads(stream: bytes) -> list[Any]:
    """The ``data:`` payloads of an SSE stream, decoded; ``[DONE]`` kept as a string."""
    assert stream.endswith(b"\n\n") or not stream
    out: list[Any] = []
    for event in stream.decode().split("\n\n")[:-1]:
        assert event.startswith("data:") and "\n" not in event, event
        data = event[len("data:") :].strip()
        out.append(data if data == "[DONE]" else json.loads(data))
    return out


# --- requests ---------------------------------------------------------------------------------


def test_golden_cases_are_present() -> None:
    assert len(REQUEST_CASES) >= 5 and RESPONSE_CASES and STREAM_CASES
    assert {_golden(n)["endpoint"] for n in REQUEST_CASES} == set(ENDPOINTS)


@pytest.mark.parametrize("name", REQUEST_CASES)
def test_request_matches_golden(name: str) -> None:
    case = _golden(name)
    route = _route(case["deployment"], api_version=case["api_version"], params=case["params"])
    upstream = AzureOpenAIAdapter().request(ENDPOINTS[case["endpoint"]], case["openai"], route)
    expected = case["azure"]
    assert upstream.url == expected["url"]
    assert upstream.headers == expected["headers"]
    assert json.loads(upstream.body) == expected["body"]


def test_body_is_the_openai_adapters_body() -> None:
    payload = {"model": "assistant", "messages": MESSAGES, "stream": True, "stream_options": {"foo": 1}}
    route = _route(params={"top_p": 0.5})
    assert AzureOpenAIAdapter().request(CHAT, payload, route).body == OpenAIAdapter().request(CHAT, payload, route).body


def test_trailing_slash_on_the_endpoint_is_not_doubled() -> None:
    upstream = AzureOpenAIAdapter().request(CHAT, {"model": "a", "messages": MESSAGES}, _route(base_url=RESOURCE + "/"))
    assert upstream.url == f"{RESOURCE}/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"


def test_entra_id_bearer_header_passes_through() -> None:
    route = _route(headers={"authorization": "Bearer entra-token"})
    upstream = AzureOpenAIAdapter().request(EMBEDDINGS, {"model": "a", "input": "x"}, route)
    assert upstream.headers == {"content-type": "application/json", "authorization": "Bearer entra-token"}


def test_client_cannot_override_headers_or_deployment_through_the_body() -> None:
    payload = {"model": "../other", "messages": MESSAGES, "api-version": "x", "api-key": "client"}
    upstream = AzureOpenAIAdapter().request(CHAT, payload, _route())
    assert upstream.url.startswith(f"{RESOURCE}/openai/deployments/gpt-4o/")
    assert upstream.headers["api-key"] == "k"


# --- responses and streams --------------------------------------------------------------------


@pytest.mark.parametrize("name", RESPONSE_CASES)
def test_response_passes_unchanged_with_usage(name: str) -> None:
    case = _golden(name)
    raw = json.dumps(case["azure"]).encode()
    content, usage = AzureOpenAIAdapter().response(CHAT, raw)
    assert content == raw
    assert usage == Usage(*case["usage"])


@pytest.mark.parametrize("client_wants_usage", [False, True])
@pytest.mark.parametrize("name", STREAM_CASES)
def test_stream_matches_golden(name: str, client_wants_usage: bool) -> None:
    case = _golden(name)
    payload: dict[str, Any] = {"model": "assistant", "messages": MESSAGES, "stream": True}
    if client_wants_usage:
        payload["stream_options"] = {"include_usage": True}
    tap = AzureOpenAIAdapter().stream(CHAT, payload)
    raw = case["azure_sse"].encode()
    out = tap.feed(raw) + tap.close()
    expected = case["forwarded_with_usage" if client_wants_usage else "forwarded_without_usage"]
    assert _payloads(out) == expected
    assert tap.usage == Usage(*case["usage"])
    assert tap.finished is case["finished"]
    assert bytes(tap.forwarded) == out


@pytest.mark.parametrize("name", STREAM_CASES)
def test_stream_split_at_every_byte_gives_the_same_output(name: str) -> None:
    raw = _golden(name)["azure_sse"].encode()
    payload = {"model": "assistant", "messages": MESSAGES, "stream": True}
    whole = AzureOpenAIAdapter().stream(CHAT, payload)
    expected = whole.feed(raw) + whole.close()
    tap = AzureOpenAIAdapter().stream(CHAT, payload)
    out = b"".join(tap.feed(raw[i : i + 1]) for i in range(len(raw))) + tap.close()
    assert out == expected
    assert tap.usage == whole.usage


def test_prompt_filter_chunk_is_kept_even_beside_a_usage_chunk() -> None:
    """Azure's opening chunk also has ``choices: []``; only a chunk *with* usage may be dropped."""
    prompt = {"choices": [], "prompt_filter_results": [{"prompt_index": 0}], "usage": None}
    usage = {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2}}
    raw = f"data: {json.dumps(prompt)}\n\ndata: {json.dumps(usage)}\n\ndata: [DONE]\n\n".encode()
    tap = AzureOpenAIAdapter().stream(CHAT, {"model": "a", "messages": MESSAGES, "stream": True})
    assert _payloads(tap.feed(raw) + tap.close()) == [prompt, "[DONE]"]
    assert tap.usage == Usage(1, 2, 0)


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failure_hides_the_backends_text(status: int) -> None:
    body = json.dumps({"error": {"code": str(status), "message": "Access denied for key k***secret"}}).encode()
    error = AzureOpenAIAdapter().error(_route(), status, body, None)
    assert isinstance(error, UpstreamError) and error.code == "backend_auth_failed"
    assert "secret" not in error.message and "azure-eu" in error.message


def test_deployment_not_found_is_the_gateways_configuration() -> None:
    body = json.dumps({"error": {"code": "DeploymentNotFound", "message": "The API deployment does not exist."}})
    error = AzureOpenAIAdapter().error(_route("gpt-4o-typo"), 404, body.encode(), None)
    assert isinstance(error, UpstreamError) and not isinstance(error, UpstreamRejected)
    assert error.code == "backend_deployment_not_found"
    assert "gpt-4o-typo" in error.message and "does not exist" in error.message


def test_content_filter_rejection_reaches_the_client() -> None:
    body = {
        "error": {
            "message": "The prompt was filtered by the content management policy.",
            "type": None,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
            "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {}},
        }
    }
    error = AzureOpenAIAdapter().error(_route(), 400, json.dumps(body).encode(), None)
    assert isinstance(error, UpstreamRejected)
    assert (error.status, error.code, error.param) == (400, "content_filter", "prompt")
    assert error.message == body["error"]["message"]


def test_rate_limit_keeps_retry_after() -> None:
    body = json.dumps({"error": {"code": "429", "message": "Rate limit reached."}}).encode()
    error = AzureOpenAIAdapter().error(_route(), 429, body, "7")
    assert isinstance(error, UpstreamRejected) and (error.status, error.retry_after) == (429, "7")


# --- against FakeAzure ------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def fake() -> Any:
    async with FakeAzure() as server:
        yield server


@pytest.fixture(scope="module")
async def client() -> Any:
    async with httpx.AsyncClient(timeout=10) as http:
        yield http


async def _send(client: httpx.AsyncClient, endpoint: Endpoint, payload: dict[str, Any], route: ModelRoute) -> Any:
    upstream = AzureOpenAIAdapter().request(endpoint, payload, route)
    return await client.post(upstream.url, headers=upstream.headers, content=upstream.body)


@pytest.mark.parametrize(
    ("endpoint", "payload", "usage"),
    [
        (CHAT, {"model": "assistant", "messages": MESSAGES}, Usage(12, 7)),
        (COMPLETIONS, {"model": "assistant", "prompt": "one two"}, Usage(12, 7)),
        (EMBEDDINGS, {"model": "assistant", "input": "one two three"}, Usage(12, 0)),
    ],
)
async def test_plain_request_end_to_end(
    fake: FakeAzure, client: httpx.AsyncClient, endpoint: Endpoint, payload: dict[str, Any], usage: Usage
) -> None:
    fake.clear_requests()
    route = _route("team tokens-12-7", base_url=fake.base_url)
    response = await _send(client, endpoint, payload, route)
    assert response.status_code == 200, response.text
    content, got = AzureOpenAIAdapter().response(endpoint, response.content)
    assert got == usage
    reply = json.loads(content)
    assert reply["model"] == "team tokens-12-7"  # the fake answers as the deployment
    assert ("prompt_filter_results" in reply) is (endpoint is not EMBEDDINGS)
    [seen] = fake.requests
    assert seen.path == f"/openai/deployments/team%20tokens-12-7{endpoint.path}"
    assert (seen.query, seen.headers["api-key"]) == ("api-version=2024-10-21", "k")
    assert seen.body == {**payload, "model": "team tokens-12-7"}


@pytest.mark.parametrize("client_wants_usage", [False, True])
async def test_stream_end_to_end(fake: FakeAzure, client: httpx.AsyncClient, client_wants_usage: bool) -> None:
    payload: dict[str, Any] = {"model": "assistant", "messages": MESSAGES, "stream": True}
    if client_wants_usage:
        payload["stream_options"] = {"include_usage": True}
    adapter = AzureOpenAIAdapter()
    upstream = adapter.request(CHAT, payload, _route("tokens-12-7", base_url=fake.base_url))
    tap = adapter.stream(CHAT, payload)
    out = bytearray()
    async with client.stream("POST", upstream.url, headers=upstream.headers, content=upstream.body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for data in response.aiter_raw():
            out += tap.feed(data)
    out += tap.close()
    chunks = _payloads(bytes(out))
    assert chunks[0]["choices"] == [] and "prompt_filter_results" in chunks[0]  # Azure's opening chunk survives
    assert chunks[-1] == "[DONE]" and tap.finished
    assert tap.usage == Usage(12, 7)
    usage_only = [c for c in chunks[1:-1] if not c["choices"]]
    assert len(usage_only) == (1 if client_wants_usage else 0)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[1:-1] if c["choices"])
    assert len(text.split()) == 7


async def test_missing_api_key_is_401_and_stays_hidden(fake: FakeAzure, client: httpx.AsyncClient) -> None:
    response = await _send(
        client, CHAT, {"model": "a", "messages": MESSAGES}, _route(base_url=fake.base_url, headers={})
    )
    assert response.status_code == 401
    assert set(response.json()["error"]) >= {"message", "code"}
    error = AzureOpenAIAdapter().error(_route(), response.status_code, response.content, None)
    assert isinstance(error, UpstreamError) and error.code == "backend_auth_failed"


async def test_entra_id_token_is_accepted(fake: FakeAzure, client: httpx.AsyncClient) -> None:
    forged = _route(base_url=fake.base_url, headers={"authorization": "Bearer entra-token"})
    assert (await _send(client, EMBEDDINGS, {"model": "a", "input": "x"}, forged)).status_code == 401
    grant = {"grant_type": "client_credentials", "client_id": "c", "client_secret": "s", "scope": "x/.default"}
    token = (await client.post(f"{fake.base_url}/tenant/oauth2/v2.0/token", data=grant)).json()["access_token"]
    route = _route(base_url=fake.base_url, headers={"authorization": f"Bearer {token}"})
    response = await _send(client, EMBEDDINGS, {"model": "a", "input": "x"}, route)
    assert response.status_code == 200, response.text


async def test_missing_api_version_is_400(fake: FakeAzure, client: httpx.AsyncClient) -> None:
    url = f"{fake.base_url}/openai/deployments/gpt-4o/chat/completions"
    response = await client.post(url, headers={"api-key": "k"}, json={"messages": MESSAGES})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "MissingApiVersionParameter"


async def test_unknown_path_is_404(fake: FakeAzure, client: httpx.AsyncClient) -> None:
    response = await client.post(f"{fake.base_url}/v1/chat/completions?api-version=1", headers={"api-key": "k"})
    assert response.status_code == 404 and "error" in response.json()


async def test_error_markers_in_the_deployment_name(fake: FakeAzure, client: httpx.AsyncClient) -> None:
    errors = {}
    for deployment in ("error-404", "error-429", "error-500"):
        route = _route(deployment, base_url=fake.base_url)
        response = await _send(client, CHAT, {"model": "a", "messages": MESSAGES}, route)
        retry_after = response.headers.get("retry-after")
        errors[deployment] = AzureOpenAIAdapter().error(route, response.status_code, response.content, retry_after)
    missing, limited, failed = errors["error-404"], errors["error-429"], errors["error-500"]
    assert isinstance(missing, UpstreamError) and missing.code == "backend_deployment_not_found"
    assert isinstance(limited, UpstreamRejected) and (limited.status, limited.retry_after) == (429, "1")
    assert isinstance(failed, UpstreamError) and "status 500" in failed.message
