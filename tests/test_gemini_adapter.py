"""The Gemini adapter against golden files modelled on Google's published examples, then against FakeGemini.

Golden files live in ``tests/golden/gemini/``:

* ``*.request.json``: ``{"openai": request, "params": route defaults, "gemini": expected body}``;
* ``*.response.json``: ``{"gemini": reply, "openai": expected reply minus created, "usage": [p, c, cached]}``;
* ``*.stream.json``: ``{"gemini_sse": raw stream, "openai_chunks": expected data payloads in order
  (chunk objects minus created, and the string "[DONE]"), "include_usage", "usage", "finished"}``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes.fake_gemini import FakeGemini
from fakes.fake_gemini_replies import THOUGHT_SIGNATURE
from openai_spec import validate

from gateway.catalog.registry import ANONYMOUS, BackendTarget, ModelRoute, Prices
from gateway.errors import InvalidRequest, UnsupportedEndpoint, UpstreamError, UpstreamRejected
from gateway.providers.base import UpstreamRequest
from gateway.providers.credentials import StaticKey
from gateway.providers.gemini import GeminiAdapter
from gateway.wire.endpoints import CHAT, COMPLETIONS, EMBEDDINGS
from gateway.wire.usage import Usage

GOLDEN = Path(__file__).parent / "golden" / "gemini"
REQUEST_CASES = sorted(p.name for p in GOLDEN.glob("*.request.json"))
RESPONSE_CASES = sorted(p.name for p in GOLDEN.glob("*.response.json"))
STREAM_CASES = sorted(p.name for p in GOLDEN.glob("*.stream.json"))
BASE = "https://generativelanguage.googleapis.com/v1beta"
MODEL = "gemini-2.5-flash"
HI = [{"role": "user", "content": "hi"}]
TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
ADAPTER = GeminiAdapter()


def _route(params: dict[str, Any] | None = None, *, base: str = BASE, model: str = MODEL, key: str = "k") -> ModelRoute:
    credentials = StaticKey("x-goog-api-key", key) if key else ANONYMOUS
    backend = BackendTarget(uuid.uuid4(), "google", "gemini", base, None, credentials=credentials)
    return ModelRoute("gemini", uuid.uuid4(), uuid.uuid4(), 1, backend, model, params or {}, Prices(), 0)


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


def _without_created(obj: Any) -> Any:
    return {k: v for k, v in obj.items() if k != "created"} if isinstance(obj, dict) else obj


# --- requests ---------------------------------------------------------------------------------


def test_golden_cases_are_present() -> None:
    assert len(REQUEST_CASES) >= 6 and len(RESPONSE_CASES) >= 4 and len(STREAM_CASES) >= 3


@pytest.mark.parametrize("name", REQUEST_CASES)
def test_request_matches_golden(name: str) -> None:
    case = _golden(name)
    upstream = ADAPTER.request(CHAT, case["openai"], _route(case["params"]))
    assert json.loads(upstream.body) == case["gemini"]


def test_request_urls_and_headers() -> None:
    plain = ADAPTER.request(CHAT, {"model": "g", "messages": HI}, _route())
    assert plain.url == f"{BASE}/models/gemini-2.5-flash:generateContent"
    assert plain.headers == {"content-type": "application/json", "x-goog-api-key": "k"}
    streamed = ADAPTER.request(CHAT, {"model": "g", "stream": True, "messages": HI}, _route(model="models/gemini-pro"))
    assert streamed.url == f"{BASE}/models/gemini-pro:streamGenerateContent?alt=sse"
    assert "stream" not in json.loads(streamed.body)


def test_embeddings_go_to_batch_embed_contents_and_completions_are_unsupported() -> None:
    payload = {"model": "e", "input": ["one", "two"], "dimensions": 4, "encoding_format": "float"}
    upstream = ADAPTER.request(EMBEDDINGS, payload, _route(model="gemini-embedding-001"))
    assert upstream.url == f"{BASE}/models/gemini-embedding-001:batchEmbedContents"
    one = {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "one"}]}, "outputDimensionality": 4}
    assert json.loads(upstream.body)["requests"][0] == one
    with pytest.raises(InvalidRequest):  # token arrays: Gemini embeds text only
        ADAPTER.request(EMBEDDINGS, {"model": "e", "input": [1, 2, 3]}, _route())
    with pytest.raises(UnsupportedEndpoint, match="chat/completions"):
        ADAPTER.request(COMPLETIONS, {"model": "g", "prompt": "hi"}, _route())
    with pytest.raises(UnsupportedEndpoint):
        ADAPTER.stream(EMBEDDINGS, {"model": "e", "input": "x"})


def _user_part(part: dict[str, Any]) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": [part]}]}


@pytest.mark.parametrize(
    ("update", "param"),
    [
        ({"n": 2}, "n"),
        ({"messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{x"}}]}]}, None),
        (_user_part({"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}), None),
        (_user_part({"type": "input_audio", "input_audio": {"data": "x", "format": "ogg"}}), None),
        (_user_part({"type": "file", "file": {}}), None),
        ({"messages": [{"role": "tool", "content": "no id"}]}, "messages[0].tool_call_id"),
        ({"messages": [{"role": "tool", "tool_call_id": "call_9", "content": "orphan"}]}, "messages[0].tool_call_id"),
        ({"messages": [{"role": "function", "content": "old"}]}, "messages[0].role"),
        ({"tool_choice": "sometimes"}, "tool_choice"),
        ({"tools": [{"type": "code_interpreter"}]}, "tools[0]"),
    ],
)
def test_request_rejects_what_gemini_cannot_do(update: dict[str, Any], param: str | None) -> None:
    with pytest.raises(InvalidRequest) as caught:
        ADAPTER.request(CHAT, {"model": "g", "messages": HI, **update}, _route())
    if param is not None:
        assert caught.value.param == param


# --- responses --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", RESPONSE_CASES)
def test_response_matches_golden(name: str) -> None:
    case = _golden(name)
    body, usage = ADAPTER.response(CHAT, json.dumps(case["gemini"]).encode())
    completion = json.loads(body)
    validate("CreateChatCompletionResponse", completion)
    assert isinstance(completion["created"], int)
    assert _without_created(completion) == case["openai"]
    assert usage == Usage(*case["usage"])


BAD_REPLIES = (
    b"not json",
    b"[1]",
    b'{"modelVersion": "x"}',
    b'{"candidates": {}}',
    b'{"candidates": [{"content": {"parts": 1}}]}',
)


@pytest.mark.parametrize("body", BAD_REPLIES)
def test_malformed_response_is_an_upstream_error(body: bytes) -> None:
    with pytest.raises(UpstreamError):
        ADAPTER.response(CHAT, body)


# --- streams ----------------------------------------------------------------------------------


def _run_stream(case: dict[str, Any], pieces: list[bytes]) -> tuple[bytes, Any]:
    payload: dict[str, Any] = {"model": "g", "stream": True, "messages": HI}
    if case["include_usage"]:
        payload["stream_options"] = {"include_usage": True}
    tap = ADAPTER.stream(CHAT, payload)
    out = b"".join(tap.feed(piece) for piece in pieces) + tap.close()
    assert bytes(tap.forwarded) == out
    return out, tap


@pytest.mark.parametrize("name", STREAM_CASES)
def test_stream_matches_golden(name: str) -> None:
    case = _golden(name)
    out, tap = _run_stream(case, [case["gemini_sse"].encode()])
    chunks = _payloads(out)
    assert [_without_created(chunk) for chunk in chunks] == case["openai_chunks"]
    assert tap.usage == Usage(*case["usage"])
    assert tap.finished is case["finished"]
    objects = [chunk for chunk in chunks if isinstance(chunk, dict) and "error" not in chunk]
    for chunk in objects:
        validate("CreateChatCompletionStreamResponse", chunk)
    assert len({(c["id"], c["created"], c["model"], c["object"]) for c in objects}) == 1


@pytest.mark.parametrize("name", STREAM_CASES)
def test_stream_split_anywhere_and_lf_only_give_the_same_output(name: str) -> None:
    case = _golden(name)
    raw = case["gemini_sse"].encode()
    lf = raw.replace(b"\r\n", b"\n")
    splits = [[raw], [raw[i : i + 1] for i in range(len(raw))], [lf[i : i + 7] for i in range(0, len(lf), 7)]]
    outputs = [[_without_created(c) for c in _payloads(_run_stream(case, pieces)[0])] for pieces in splits]
    assert outputs[1] == outputs[2] == outputs[0] == case["openai_chunks"]


def test_stream_last_event_without_blank_line_is_flushed_by_close() -> None:
    case = _golden("text.stream.json")
    out, tap = _run_stream(case, [case["gemini_sse"].encode().rstrip(b"\r\n")])
    assert [_without_created(c) for c in _payloads(out)] == case["openai_chunks"] and tap.finished
    assert tap.error(b"data: {}\n\n") == b"data: {}\n\n" and tap.forwarded.endswith(b"[DONE]\n\ndata: {}\n\n")


# --- errors -----------------------------------------------------------------------------------


def _error(http_status: int, message: str, retry_after: str | None = None, **extra: Any) -> Any:
    body = json.dumps({"error": {"code": http_status, "message": message, **extra}}).encode()
    return ADAPTER.error(_route(), http_status, body, retry_after)


KEY_INVALID = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]
RETRY_INFO = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17.2s"}]


@pytest.mark.parametrize(("status", "details"), [(401, []), (403, []), (400, KEY_INVALID)])
def test_auth_failure_hides_the_backends_text(status: int, details: list[Any]) -> None:
    error = _error(status, "API key AIzaSyFAKE-123 is not valid", status="PERMISSION_DENIED", details=details)
    assert isinstance(error, UpstreamError) and error.code == "backend_auth_failed"
    assert "AIza" not in error.message


@pytest.mark.parametrize(
    ("status", "header", "expected"),
    [
        (429, None, (429, "rate_limit_error", "rate_limit_exceeded", "18")),  # from RetryInfo, rounded up
        (429, "5", (429, "rate_limit_error", "rate_limit_exceeded", "5")),  # the header wins
        (503, None, (503, "api_error", "overloaded", "1")),
        (400, None, (400, "invalid_request_error", None, None)),
        (404, None, (404, "invalid_request_error", "not_found", None)),
    ],
)
def test_rejections_keep_the_message(status: int, header: str | None, expected: tuple[Any, ...]) -> None:
    details = RETRY_INFO if status == 429 else []
    error = _error(status, "* GenerateContentRequest.contents: bad", header, details=details)
    assert isinstance(error, UpstreamRejected)
    assert (error.status, error.type, error.code, error.retry_after) == expected
    assert error.message == "* GenerateContentRequest.contents: bad"


def test_server_errors_keep_the_backends_message() -> None:
    error = _error(500, "An internal error has occurred.", status="INTERNAL")
    assert isinstance(error, UpstreamError) and "internal error" in error.message and "500" in error.message
    assert isinstance(ADAPTER.error(_route(), 502, b"<html>bad gateway</html>", None), UpstreamError)


# --- against FakeGemini -----------------------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeGemini]:
    async with FakeGemini() as server:
        yield server


async def _post(upstream: UpstreamRequest) -> httpx.Response:
    async with httpx.AsyncClient(timeout=5) as http:
        return await http.post(upstream.url, headers=upstream.headers, content=upstream.body)


async def _send(fake: FakeGemini, payload: dict[str, Any], model: str, key: str = "fake-key") -> Any:
    """Translate, send with httpx and translate back: the chat.completion, or the adapter's error."""
    route = _route(base=fake.base_url, model=model, key=key)
    upstream = ADAPTER.request(CHAT, payload, route)
    response = await _post(upstream)
    if response.status_code >= 300:
        return ADAPTER.error(route, response.status_code, response.content, response.headers.get("retry-after"))
    body, usage = ADAPTER.response(CHAT, response.content)
    completion = json.loads(body)
    validate("CreateChatCompletionResponse", completion)
    assert Usage.from_openai(completion["usage"]) == usage
    return completion


async def test_fake_plain_chat(fake: FakeGemini) -> None:
    payload = {"model": "g", "messages": [{"role": "system", "content": "Be brief."}, *HI]}
    completion = await _send(fake, payload, "gemini-tokens-12-5")
    assert [len(c["message"]["content"].split()) for c in completion["choices"] if c["finish_reason"] == "stop"] == [5]
    assert (completion["usage"]["prompt_tokens"], completion["usage"]["completion_tokens"]) == (12, 5)
    sent = fake.requests[-1]
    assert sent.path == "/v1beta/models/gemini-tokens-12-5:generateContent"
    assert sent.headers["x-goog-api-key"] == "fake-key"
    assert sent.body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    cut = await _send(fake, {"model": "g", "max_tokens": 2, "messages": HI}, "gemini-flash")
    assert cut["choices"][0]["finish_reason"] == "length" and cut["choices"][0]["message"]["content"] == "This is"


async def test_fake_function_call_round_trip(fake: FakeGemini) -> None:
    first = await _send(fake, {"model": "g", "tools": TOOLS, "messages": HI}, "gemini-flash")
    call = first["choices"][0]["message"]["tool_calls"][0]
    assert first["choices"][0]["finish_reason"] == "tool_calls"
    signed = {"google": {"thought_signature": THOUGHT_SIGNATURE}}
    function = {"name": "lookup", "arguments": '{"query":"fake"}'}
    assert call == {"id": "call_0", "type": "function", "function": function, "extra_content": signed}
    followup = [*HI, first["choices"][0]["message"], {"role": "tool", "tool_call_id": "call_0", "content": "42"}]
    second = await _send(fake, {"model": "g", "tools": TOOLS, "messages": followup}, "gemini-flash")
    assert second["choices"][0]["finish_reason"] == "stop" and second["choices"][0]["message"]["content"]
    contents = fake.requests[-1].body["contents"]
    # The signature went back with its call, as thinking models require.
    signed_call = {"functionCall": {"name": "lookup", "args": {"query": "fake"}}, "thoughtSignature": THOUGHT_SIGNATURE}
    assert contents[-2]["parts"] == [signed_call]
    assert contents[-1]["parts"] == [{"functionResponse": {"name": "lookup", "response": {"content": "42"}}}]


@pytest.mark.parametrize("include_usage", [True, False])
async def test_fake_stream_through_the_tap(fake: FakeGemini, include_usage: bool) -> None:
    payload = {"model": "g", "stream": True, "messages": HI, "stream_options": {"include_usage": include_usage}}
    route = _route(base=fake.base_url, model="gemini-tokens-7-4-chunkdelay-5")
    upstream = ADAPTER.request(CHAT, payload, route)
    tap = ADAPTER.stream(CHAT, payload)
    out = b""
    async with (
        httpx.AsyncClient(timeout=5) as http,
        http.stream("POST", upstream.url, headers=upstream.headers, content=upstream.body) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        async for piece in response.aiter_raw():
            out += tap.feed(piece)
    out += tap.close()
    chunks = _payloads(out)
    assert chunks[-1] == "[DONE]" and tap.finished and tap.usage == Usage(7, 4, 0)
    for chunk in (objects := chunks[:-1]):
        validate("CreateChatCompletionStreamResponse", chunk)
    assert objects[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in objects if c["choices"])
    assert len(text.split()) == 4
    assert (objects[-1]["choices"] == [] and objects[-1]["usage"]["total_tokens"] == 11) is include_usage


@pytest.mark.parametrize(
    ("model", "key", "expected"),
    [
        ("gemini-error-429", "k", (429, "1")),  # the fake's RetryInfo says 1s
        ("gemini-error-503", "k", (503, "1")),
        ("gemini-error-400", "k", (400, None)),
        ("gemini-error-500", "k", "upstream_error"),
        ("gemini-flash", "", "backend_auth_failed"),  # no key: the fake's 403
    ],
)
async def test_fake_errors(fake: FakeGemini, model: str, key: str, expected: Any) -> None:
    error = await _send(fake, {"model": "g", "messages": HI}, model, key)
    if isinstance(expected, str):
        assert type(error) is UpstreamError and error.code == expected
    else:
        assert isinstance(error, UpstreamRejected) and (error.status, error.retry_after) == expected
        assert error.message == f"fake gemini error {error.status}"


async def test_fake_embeddings(fake: FakeGemini) -> None:
    route = _route(base=fake.base_url, model="gemini-embedding-001")
    upstream = ADAPTER.request(EMBEDDINGS, {"model": "e", "input": ["a b", "c"], "dimensions": 4}, route)
    body, usage = ADAPTER.response(EMBEDDINGS, (await _post(upstream)).content)
    reply = json.loads(body)
    validate("CreateEmbeddingResponse", reply)
    assert [len(item["embedding"]) for item in reply["data"]] == [4, 4] and usage is None
