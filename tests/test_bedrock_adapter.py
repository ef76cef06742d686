"""The Bedrock adapter against golden files modelled on AWS's Converse API reference, then against FakeBedrock.

Golden files live in ``tests/golden/bedrock/``:

* ``*.request.json``: ``{"openai": request, "params": route defaults, "bedrock": expected Converse body}``;
* ``*.response.json``: ``{"bedrock": reply, "openai": expected reply minus id and created, "usage": [p, c, cached]}``;
* ``*.stream.json``: ``{"bedrock_events": [[event type, payload] or ["exception", type, message]], "openai_chunks":
  expected data payloads in order (chunk objects minus id and created, and "[DONE]"), "include_usage", "usage"
  (or null), "finished"}``; the events are framed here with the fake's encoder.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx
import pytest
import yarl
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials
from botocore.eventstream import EventStreamBuffer
from fakes.fake_bedrock import FakeBedrock
from fakes.fake_bedrock_replies import event_frame, exception_frame, frame
from openai_spec import validate

from gateway.catalog.registry import BackendTarget, Credentials, ModelRoute, Prices
from gateway.errors import InvalidRequest, UnsupportedEndpoint, UpstreamError, UpstreamRejected, UpstreamTimeout
from gateway.providers.base import UpstreamRequest
from gateway.providers.bedrock import EVENT_STREAM, AwsCredentials, BedrockAdapter
from gateway.providers.bedrock_signing import AwsCredentialChain, DefaultCredentials, SigV4, utc_now
from gateway.providers.credentials import StaticKey
from gateway.wire.endpoints import CHAT, COMPLETIONS, EMBEDDINGS
from gateway.wire.usage import Usage

GOLDEN = Path(__file__).parent / "golden" / "bedrock"
REQUEST_CASES = sorted(p.name for p in GOLDEN.glob("*.request.json"))
RESPONSE_CASES = sorted(p.name for p in GOLDEN.glob("*.response.json"))
STREAM_CASES = sorted(p.name for p in GOLDEN.glob("*.stream.json"))
BASE = "https://bedrock-runtime.us-east-1.amazonaws.com"
MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
HI = [{"role": "user", "content": "hi"}]
TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
CREDENTIALS = AwsCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token-example")
WHEN = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
ADAPTER = BedrockAdapter()


def _route(
    params: dict[str, Any] | None = None,
    *,
    base: str = BASE,
    model: str = MODEL,
    region: str = "us-east-1",
    credentials: Credentials | None = None,
) -> ModelRoute:
    """A route signed for ``region`` at a fixed time with CREDENTIALS, unless given other credentials."""
    signer = credentials or SigV4("aws", region, lambda: CREDENTIALS, lambda: WHEN)
    backend = BackendTarget(uuid.uuid4(), "aws", "bedrock", base, None, credentials=signer, region=region)
    return ModelRoute("claude", uuid.uuid4(), uuid.uuid4(), 1, backend, model, params or {}, Prices(), 0)


def _golden(name: str) -> dict[str, Any]:
    return dict(json.loads((GOLDEN / name).read_text(encoding="utf-8")))


def _payloads(stream: bytes) -> list[Any]:
    """The ``data:`` payloads of an OpenAI SSE stream, decoded; ``[DONE]`` kept as a string."""
    assert stream.endswith(b"\n\n") or not stream
    out: list[Any] = []
    for event in stream.decode().split("\n\n")[:-1]:
        assert event.startswith("data: ") and "\n" not in event, event
        out.append("[DONE]" if event == "data: [DONE]" else json.loads(event[len("data: ") :]))
    return out


def _stable(obj: Any) -> Any:
    return {k: v for k, v in obj.items() if k not in ("id", "created")} if isinstance(obj, dict) else obj


# --- requests ---------------------------------------------------------------------------------


def test_golden_cases_are_present() -> None:
    assert len(REQUEST_CASES) >= 6 and len(RESPONSE_CASES) >= 4 and len(STREAM_CASES) >= 3


@pytest.mark.parametrize("name", REQUEST_CASES)
def test_request_matches_golden(name: str) -> None:
    case = _golden(name)
    upstream = ADAPTER.request(CHAT, case["openai"], _route(case["params"]))
    assert json.loads(upstream.body) == case["bedrock"]


def test_request_urls_and_headers() -> None:
    plain = ADAPTER.request(CHAT, {"model": "c", "messages": HI}, _route())
    assert plain.url == f"{BASE}/model/anthropic.claude-3-5-sonnet-20240620-v1:0/converse"
    assert set(plain.headers) == {"content-type", "x-amz-date", "x-amz-security-token", "authorization"}
    assert plain.headers["content-type"] == "application/json"
    assert plain.headers["x-amz-date"] == "20240506T070809Z"
    assert plain.headers["x-amz-security-token"] == "session-token-example"
    assert plain.headers["authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240506/us-east-1/bedrock/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature="
    )
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-v1:0"
    streamed = ADAPTER.request(CHAT, {"model": "c", "stream": True, "messages": HI}, _route(model=arn))
    assert streamed.url == f"{BASE}/model/{arn.replace('/', '%2F')}/converse-stream"
    assert "stream" not in json.loads(streamed.body)


@pytest.mark.parametrize("model", [MODEL, "arn:aws:bedrock:us-east-1:1:inference-profile/x", "a b+c@d%e!f(g)*h=i"])
def test_the_url_signed_is_the_url_either_transport_sends(model: str) -> None:
    url = ADAPTER.request(CHAT, {"model": "c", "messages": HI}, _route(model=model)).url
    path = urlsplit(url).path
    assert yarl.URL(url).raw_path == httpx.URL(url).raw_path.decode() == path  # aiohttp's and httpx's URL classes
    assert unquote(path.split("/")[2]) == model


def _spec_signature(upstream: UpstreamRequest, region: str) -> str:
    """SigV4 computed from AWS's published algorithm, without botocore."""
    split = urlsplit(upstream.url)
    path = quote(split.path, safe="/~")  # non-S3 services sign the already-encoded path encoded once more
    headers = {**{k: v for k, v in upstream.headers.items() if k != "authorization"}, "host": split.netloc}
    names = sorted(headers)
    canonical = "\n".join(
        [
            "POST",
            path,
            "",
            *(f"{name}:{headers[name].strip()}" for name in names),
            "",
            ";".join(names),
            hashlib.sha256(upstream.body).hexdigest(),
        ]
    )
    date = upstream.headers["x-amz-date"]
    scope = f"{date[:8]}/{region}/bedrock/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + CREDENTIALS.secret_key).encode()
    for part in (date[:8], region, "bedrock", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def _botocore_signature(upstream: UpstreamRequest, region: str) -> str:
    """The same signature as botocore computes it for the request as sent (minus its authorization)."""
    headers = {k: v for k, v in upstream.headers.items() if k != "authorization"}
    request = AWSRequest(method="POST", url=upstream.url, data=upstream.body, headers=headers)
    request.context["timestamp"] = upstream.headers["x-amz-date"]
    frozen = ReadOnlyCredentials(CREDENTIALS.access_key, CREDENTIALS.secret_key, CREDENTIALS.token)
    signer = SigV4Auth(frozen, "bedrock", region)
    return str(signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request))


@pytest.mark.parametrize(("base", "region"), [(BASE, "us-east-1"), ("http://127.0.0.1:4566", "eu-west-3")])
def test_signature_verifies(base: str, region: str) -> None:
    payload = {"model": "c", "messages": [{"role": "user", "content": "héllo ✓"}], "tools": TOOLS}
    upstream = ADAPTER.request(CHAT, payload, _route(base=base, region=region))
    signature = upstream.headers["authorization"].rpartition("Signature=")[2]
    expected_region = region
    assert signature == _spec_signature(upstream, expected_region) == _botocore_signature(upstream, expected_region)
    other = ADAPTER.request(CHAT, {**payload, "temperature": 0}, _route(base=base, region=region))
    assert other.headers["authorization"] != upstream.headers["authorization"]  # the body is covered


def test_signing_without_session_token_and_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-from-env")
    found = DefaultCredentials()()
    assert found == AwsCredentials("AKIDFROMENV", "secret-from-env", None)
    route = _route(credentials=SigV4("aws", "us-east-1", DefaultCredentials()))
    upstream = ADAPTER.request(CHAT, {"model": "c", "messages": HI}, route)
    assert "x-amz-security-token" not in upstream.headers
    assert upstream.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDFROMENV/")


def test_missing_credentials_is_an_upstream_error() -> None:
    # A missing region is refused when the models file loads (tests/test_catalog.py).
    with pytest.raises(UpstreamError, match="Backend 'aws': no AWS credentials found"):
        ADAPTER.request(
            CHAT, {"model": "c", "messages": HI}, _route(credentials=SigV4("aws", "us-east-1", lambda: None))
        )


def test_a_bedrock_api_key_is_sent_as_a_bearer_token_unsigned() -> None:
    route = _route(credentials=StaticKey("authorization", "Bearer bedrock-api-key"))
    upstream = ADAPTER.request(CHAT, {"model": "c", "messages": HI}, route)
    assert upstream.headers == {"content-type": "application/json", "authorization": "Bearer bedrock-api-key"}


def test_embeddings_use_titan_invoke_for_one_text_and_other_endpoints_are_unsupported() -> None:
    route = _route(model="amazon.titan-embed-text-v2:0")
    upstream = ADAPTER.request(EMBEDDINGS, {"model": "e", "input": "one", "dimensions": 256}, route)
    assert upstream.url == f"{BASE}/model/amazon.titan-embed-text-v2:0/invoke"
    assert json.loads(upstream.body) == {"inputText": "one", "dimensions": 256}
    assert json.loads(ADAPTER.request(EMBEDDINGS, {"model": "e", "input": ["only"]}, route).body)["inputText"] == "only"
    with pytest.raises(UnsupportedEndpoint, match="single string"):
        ADAPTER.request(EMBEDDINGS, {"model": "e", "input": ["one", "two"]}, route)
    with pytest.raises(InvalidRequest):
        ADAPTER.request(EMBEDDINGS, {"model": "e", "input": [1, 2, 3]}, route)
    with pytest.raises(UnsupportedEndpoint, match="chat/completions"):
        ADAPTER.request(COMPLETIONS, {"model": "c", "prompt": "hi"}, _route())
    with pytest.raises(UnsupportedEndpoint):
        ADAPTER.stream(EMBEDDINGS, {"model": "e", "input": "x"})
    body, usage = ADAPTER.response(EMBEDDINGS, b'{"embedding": [0.5, -0.25], "inputTextTokenCount": 3}')
    reply = json.loads(body)
    validate("CreateEmbeddingResponse", reply)
    assert reply["data"][0]["embedding"] == [0.5, -0.25] and usage == Usage(3, 0, 0)


def _user_part(part: dict[str, Any]) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": [part]}]}


CALL = {"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{x"}}


@pytest.mark.parametrize(
    ("update", "param"),
    [
        ({"n": 2}, "n"),
        ({"messages": [{"role": "assistant", "tool_calls": [CALL]}]}, "messages[0].tool_calls"),
        ({"messages": [{"role": "assistant", "tool_calls": [{**CALL, "id": None}]}]}, "messages[0].tool_calls"),
        (_user_part({"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}), None),
        (_user_part({"type": "image_url", "image_url": {"url": "data:image/tiff;base64,AAAA"}}), None),
        (_user_part({"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}}), None),
        ({"messages": [{"role": "tool", "content": "no id"}]}, "messages[0].tool_call_id"),
        ({"messages": [{"role": "function", "content": "old"}]}, "messages[0].role"),
        ({"tool_choice": "sometimes", "tools": TOOLS}, "tool_choice"),
        ({"tools": [{"type": "code_interpreter"}]}, "tools[0]"),
    ],
)
def test_request_rejects_what_bedrock_cannot_do(update: dict[str, Any], param: str | None) -> None:
    with pytest.raises(InvalidRequest) as caught:
        ADAPTER.request(CHAT, {"model": "c", "messages": HI, **update}, _route())
    if param is not None:
        assert caught.value.param == param


# --- responses --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", RESPONSE_CASES)
def test_response_matches_golden(name: str) -> None:
    case = _golden(name)
    body, usage = ADAPTER.response(CHAT, json.dumps(case["bedrock"]).encode())
    completion = json.loads(body)
    validate("CreateChatCompletionResponse", completion)
    assert isinstance(completion["created"], int) and completion["id"].startswith("chatcmpl-")
    assert _stable(completion) == case["openai"]
    assert usage == Usage(*case["usage"])


@pytest.mark.parametrize(
    "body", [b"not json", b"[1]", b'{"stopReason": "end_turn"}', b'{"output": {"message": {"content": [1]}}}']
)
def test_malformed_response_is_an_upstream_error(body: bytes) -> None:
    with pytest.raises(UpstreamError):
        ADAPTER.response(CHAT, body)


# --- streams ----------------------------------------------------------------------------------


def _frames(events: list[list[Any]]) -> bytes:
    return b"".join(exception_frame(e[1], e[2]) if e[0] == "exception" else event_frame(e[0], e[1]) for e in events)


def _run_stream(include_usage: bool, pieces: list[bytes]) -> tuple[bytes, Any]:
    payload: dict[str, Any] = {"model": "claude", "stream": True, "messages": HI}
    if include_usage:
        payload["stream_options"] = {"include_usage": True}
    tap = ADAPTER.stream(CHAT, payload)
    out = b"".join(tap.feed(piece) for piece in pieces) + tap.close()
    assert bytes(tap.forwarded) == out
    return out, tap


@pytest.mark.parametrize("name", STREAM_CASES)
def test_stream_matches_golden(name: str) -> None:
    case = _golden(name)
    out, tap = _run_stream(case["include_usage"], [_frames(case["bedrock_events"])])
    chunks = _payloads(out)
    assert [_stable(chunk) for chunk in chunks] == case["openai_chunks"]
    assert tap.usage == (Usage(*case["usage"]) if case["usage"] else None)
    assert tap.finished is case["finished"]
    objects = [chunk for chunk in chunks if isinstance(chunk, dict) and "error" not in chunk]
    for chunk in objects:
        validate("CreateChatCompletionStreamResponse", chunk)
    assert len({(c["id"], c["created"], c["model"], c["object"]) for c in objects}) == 1


@pytest.mark.parametrize("name", STREAM_CASES)
def test_stream_split_at_every_byte_gives_the_same_output(name: str) -> None:
    case = _golden(name)
    raw = _frames(case["bedrock_events"])
    for pieces in ([raw[i : i + 1] for i in range(len(raw))], [raw[i : i + 13] for i in range(0, len(raw), 13)]):
        out, tap = _run_stream(case["include_usage"], pieces)
        assert [_stable(c) for c in _payloads(out)] == case["openai_chunks"] and tap.finished is case["finished"]
    for cut in range(len(raw) + 1):  # every two-piece split, too
        out, _ = _run_stream(case["include_usage"], [raw[:cut], raw[cut:]])
        assert [_stable(c) for c in _payloads(out)] == case["openai_chunks"]


def test_a_corrupt_frame_ends_the_stream_with_an_error_event() -> None:
    good = event_frame("messageStart", {"role": "assistant"})
    bad = bytearray(event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "x"}}))
    bad[-1] ^= 0xFF  # message CRC no longer matches
    out, tap = _run_stream(False, [good, bytes(bad), good])
    chunks = _payloads(out)
    assert chunks[-1]["error"]["code"] == "upstream_error" and len(chunks) == 2 and not tap.finished
    assert tap.feed(good) == b""
    assert tap.error(b"data: {}\n\n") == b"data: {}\n\n" and tap.forwarded.endswith(b"data: {}\n\n")


def test_fake_frames_decode_with_botocores_parser() -> None:
    payload = {"contentBlockIndex": 0, "delta": {"text": "héllo"}}
    raw = event_frame("contentBlockDelta", payload) + exception_frame("throttlingException", "slow down")
    raw += frame({":message-type": "event", ":event-type": "messageStop"}, b"")
    buffer = EventStreamBuffer()
    buffer.add_data(raw)
    messages = list(buffer)
    assert [m.headers for m in messages] == [
        {":event-type": "contentBlockDelta", ":content-type": "application/json", ":message-type": "event"},
        {":exception-type": "throttlingException", ":content-type": "application/json", ":message-type": "exception"},
        {":message-type": "event", ":event-type": "messageStop"},
    ]
    assert json.loads(messages[0].payload) == payload and json.loads(messages[1].payload) == {"message": "slow down"}
    assert messages[2].payload == b""


# --- errors -----------------------------------------------------------------------------------


def _error(status: int, message: str, retry_after: str | None = None, **extra: Any) -> Any:
    return ADAPTER.error(_route(), status, json.dumps({"message": message, **extra}).encode(), retry_after)


@pytest.mark.parametrize(("status", "extra"), [(403, {}), (401, {}), (400, {"__type": "UnrecognizedClientException"})])
def test_auth_failure_hides_the_backends_text(status: int, extra: dict[str, Any]) -> None:
    secret = "User: arn:aws:iam::123456789012:user/gw is not authorized to perform: bedrock:InvokeModel"
    error = _error(status, secret, **extra)
    assert isinstance(error, UpstreamError) and error.code == "backend_auth_failed"
    assert "123456789012" not in error.message and "aws" in error.message


@pytest.mark.parametrize(
    ("status", "header", "extra", "expected"),
    [
        (429, None, {}, (429, "rate_limit_error", "rate_limit_exceeded", None)),
        (429, "7", {}, (429, "rate_limit_error", "rate_limit_exceeded", "7")),
        (429, None, {"__type": "ModelNotReadyException"}, (503, "api_error", "overloaded", "1")),
        (503, None, {}, (503, "api_error", "overloaded", "1")),
        (503, "4", {}, (503, "api_error", "overloaded", "4")),
        (400, None, {}, (400, "invalid_request_error", None, None)),
        (
            400,
            None,
            {"__type": "com.amazon.coral#ServiceQuotaExceededException"},
            (429, "rate_limit_error", "rate_limit_exceeded", None),
        ),
        (404, None, {}, (404, "invalid_request_error", "not_found", None)),
    ],
)
def test_rejections_keep_the_message(
    status: int, header: str | None, extra: dict[str, Any], expected: tuple[Any, ...]
) -> None:
    error = _error(status, "The provided model identifier is invalid.", header, **extra)
    assert isinstance(error, UpstreamRejected)
    assert (error.status, error.type, error.code, error.retry_after) == expected
    assert error.message == "The provided model identifier is invalid."


def test_server_errors_keep_the_backends_message() -> None:
    error = _error(500, "An internal server error occurred.")
    assert type(error) is UpstreamError and "internal server error" in error.message and "500" in error.message
    assert type(_error(424, "The model failed.")) is UpstreamError
    assert isinstance(_error(408, "Model timed out."), UpstreamTimeout)
    assert isinstance(ADAPTER.error(_route(), 502, b"<html>bad gateway</html>", None), UpstreamError)


# --- against FakeBedrock ----------------------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeBedrock]:
    async with FakeBedrock() as server:
        yield server


async def _post(upstream: UpstreamRequest) -> httpx.Response:
    async with httpx.AsyncClient(timeout=5) as http:
        return await http.post(upstream.url, headers=upstream.headers, content=upstream.body)


def _fake_route(fake: FakeBedrock, model: str, signer: Credentials | None = None) -> ModelRoute:
    return _route(base=fake.base_url, model=model, region="us-east-1", credentials=signer)


async def _send(fake: FakeBedrock, payload: dict[str, Any], model: str, signer: Credentials | None = None) -> Any:
    """Translate, send with httpx and translate back: the chat.completion, or the adapter's error."""
    route = _fake_route(fake, model, signer)
    upstream = ADAPTER.request(CHAT, payload, route)
    response = await _post(upstream)
    if response.status_code >= 300:
        return ADAPTER.error(route, response.status_code, response.content, response.headers.get("retry-after"))
    body, usage = ADAPTER.response(CHAT, response.content)
    completion = json.loads(body)
    validate("CreateChatCompletionResponse", completion)
    assert Usage.from_openai(completion["usage"]) == usage
    return completion


async def test_fake_plain_chat(fake: FakeBedrock) -> None:
    payload = {"model": "c", "messages": [{"role": "system", "content": "Be brief."}, *HI]}
    completion = await _send(fake, payload, "anthropic.claude-tokens-12-5-v1:0")
    assert completion["choices"][0]["finish_reason"] == "stop"
    assert len(completion["choices"][0]["message"]["content"].split()) == 5
    assert (completion["usage"]["prompt_tokens"], completion["usage"]["completion_tokens"]) == (12, 5)
    sent = fake.requests[-1]
    assert sent.path == "/model/anthropic.claude-tokens-12-5-v1:0/converse"
    assert sent.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert sent.body["system"] == [{"text": "Be brief."}] and sent.body["inferenceConfig"] == {"maxTokens": 4096}
    cut = await _send(fake, {"model": "c", "max_tokens": 2, "messages": HI}, "amazon.nova-lite-v1:0")
    assert cut["choices"][0]["finish_reason"] == "length" and cut["choices"][0]["message"]["content"] == "This is"


async def test_fake_with_credentials_from_env(fake: FakeBedrock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "env-token")
    env_chain: AwsCredentialChain = DefaultCredentials()
    completion = await _send(
        fake, {"model": "c", "messages": HI}, "amazon.nova-lite-v1:0", SigV4("aws", "us-east-1", env_chain)
    )
    assert completion["choices"][0]["message"]["content"] == "This is a fake reply from Bedrock."
    assert fake.requests[-1].headers["x-amz-security-token"] == "env-token"


async def test_fake_tool_use_round_trip(fake: FakeBedrock) -> None:
    first = await _send(fake, {"model": "c", "tools": TOOLS, "messages": HI}, "amazon.nova-pro-v1:0")
    message = first["choices"][0]["message"]
    call = message["tool_calls"][0]
    assert first["choices"][0]["finish_reason"] == "tool_calls"
    assert call["type"] == "function" and call["function"] == {"name": "lookup", "arguments": '{"query":"fake"}'}
    followup = [*HI, message, {"role": "tool", "tool_call_id": call["id"], "content": "42"}]
    second = await _send(fake, {"model": "c", "tools": TOOLS, "messages": followup}, "amazon.nova-pro-v1:0")
    assert second["choices"][0]["finish_reason"] == "stop" and second["choices"][0]["message"]["content"]
    messages = fake.requests[-1].body["messages"]
    assert messages[-2]["content"] == [
        {"toolUse": {"toolUseId": call["id"], "name": "lookup", "input": {"query": "fake"}}}
    ]
    assert messages[-1]["content"] == [{"toolResult": {"toolUseId": call["id"], "content": [{"text": "42"}]}}]


async def _stream(fake: FakeBedrock, payload: dict[str, Any], model: str) -> tuple[list[Any], Any]:
    upstream = ADAPTER.request(CHAT, payload, _fake_route(fake, model))
    tap = ADAPTER.stream(CHAT, payload)
    out = b""
    async with (
        httpx.AsyncClient(timeout=5) as http,
        http.stream("POST", upstream.url, headers=upstream.headers, content=upstream.body) as response,
    ):
        assert response.status_code == 200 and response.headers["content-type"] == EVENT_STREAM
        async for piece in response.aiter_raw():
            out += tap.feed(piece)
    out += tap.close()
    return _payloads(out), tap


@pytest.mark.parametrize("include_usage", [True, False])
async def test_fake_stream_through_the_tap(fake: FakeBedrock, include_usage: bool) -> None:
    payload = {"model": "claude", "stream": True, "messages": HI, "stream_options": {"include_usage": include_usage}}
    chunks, tap = await _stream(fake, payload, "meta.llama3-tokens-7-4-chunkdelay-5-v1:0")
    assert fake.requests[-1].path.endswith("/converse-stream")
    assert chunks[-1] == "[DONE]" and tap.finished and tap.usage == Usage(7, 4, 0)
    for chunk in (objects := chunks[:-1]):
        validate("CreateChatCompletionStreamResponse", chunk)
    assert objects[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in objects if c["choices"])
    assert len(text.split()) == 4
    assert (objects[-1]["choices"] == [] and objects[-1]["usage"]["total_tokens"] == 11) is include_usage


async def test_fake_stream_tool_call_and_mid_stream_exception(fake: FakeBedrock) -> None:
    payload = {"model": "claude", "stream": True, "messages": HI, "tools": TOOLS}
    chunks, tap = await _stream(fake, payload, "amazon.nova-pro-v1:0")
    calls = [
        c["choices"][0]["delta"]["tool_calls"][0] for c in chunks[:-1] if c["choices"][0]["delta"].get("tool_calls")
    ]
    assert calls[0]["function"] == {"name": "lookup", "arguments": ""} and calls[0]["id"].startswith("tooluse_")
    assert "".join(c["function"]["arguments"] for c in calls) == '{"query":"fake"}'
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls" and tap.finished
    chunks, tap = await _stream(fake, {**payload, "tools": None}, "amazon.nova-streamerror-v1:0")
    assert chunks[-1]["error"] == {
        "message": "fake bedrock stream failure",
        "type": "api_error",
        "param": None,
        "code": "upstream_error",
    }
    assert not tap.finished and tap.usage is None


@pytest.mark.parametrize(
    ("model", "signer", "expected"),
    [
        ("amazon.nova-error-429", None, (429, None)),
        ("amazon.nova-error-503", None, (503, "1")),
        ("amazon.nova-error-400", None, (400, None)),
        ("amazon.nova-error-404", None, (404, None)),
        ("amazon.nova-error-500", None, "upstream_error"),
        ("amazon.nova-lite", SigV4("aws", "us-east-1", lambda: CREDENTIALS, utc_now), None),
    ],
)
async def test_fake_errors(fake: FakeBedrock, model: str, signer: Credentials | None, expected: Any) -> None:
    error = await _send(fake, {"model": "c", "messages": HI}, model, signer)
    if expected is None:
        assert error["choices"][0]["message"]["content"]
    elif isinstance(expected, str):
        assert type(error) is UpstreamError and error.code == expected
    else:
        assert isinstance(error, UpstreamRejected) and (error.status, error.retry_after) == expected
        assert error.message == f"fake bedrock error {error.status}"


async def test_fake_refuses_unsigned_requests(fake: FakeBedrock) -> None:
    route = _fake_route(fake, "amazon.nova-lite")
    upstream = ADAPTER.request(CHAT, {"model": "c", "messages": HI}, route)
    response = await _post(UpstreamRequest(upstream.url, {"content-type": "application/json"}, upstream.body))
    assert response.status_code == 403
    assert response.headers["x-amzn-errortype"].startswith("AccessDeniedException")
    error = ADAPTER.error(route, response.status_code, response.content, None)
    assert isinstance(error, UpstreamError) and error.code == "backend_auth_failed"


async def test_fake_titan_embeddings(fake: FakeBedrock) -> None:
    route = _fake_route(fake, "amazon.titan-embed-text-v2:0")
    upstream = ADAPTER.request(EMBEDDINGS, {"model": "e", "input": "a b c", "dimensions": 4}, route)
    body, usage = ADAPTER.response(EMBEDDINGS, (await _post(upstream)).content)
    reply = json.loads(body)
    validate("CreateEmbeddingResponse", reply)
    assert len(reply["data"][0]["embedding"]) == 4 and usage == Usage(3, 0, 0)


def test_cohere_embeddings_take_many_texts_in_one_call() -> None:
    route = _route(model="cohere.embed-english-v3")
    upstream = ADAPTER.request(EMBEDDINGS, {"model": "e", "input": ["one", "two"]}, route)
    assert upstream.url == f"{BASE}/model/cohere.embed-english-v3/invoke"
    body = {"texts": ["one", "two"], "input_type": "search_document", "embedding_types": ["float"]}
    assert json.loads(upstream.body) == body
    query = ADAPTER.request(EMBEDDINGS, {"model": "e", "input": "q", "input_type": "search_query"}, route)
    assert json.loads(query.body)["input_type"] == "search_query"
    with pytest.raises(InvalidRequest, match="at most 96"):
        ADAPTER.request(EMBEDDINGS, {"model": "e", "input": ["t"] * 97}, route)
    reply, usage = ADAPTER.response(EMBEDDINGS, b'{"id": "x", "embeddings": {"float": [[0.5], [-0.25]]}}')
    decoded = json.loads(reply)
    validate("CreateEmbeddingResponse", {**decoded, "usage": {"prompt_tokens": 0, "total_tokens": 0}})
    assert [d["embedding"] for d in decoded["data"]] == [[0.5], [-0.25]] and usage is None
    with pytest.raises(UpstreamError):
        ADAPTER.response(EMBEDDINGS, b'{"embeddings": {"float": [["x"]]}}')
