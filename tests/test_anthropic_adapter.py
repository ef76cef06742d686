"""The Anthropic adapter against golden files modelled on Anthropic's published examples.

Golden files live in ``tests/golden/anthropic/``:

* ``*.request.json``: ``{"openai": request, "params": route defaults, "anthropic": expected body}``;
* ``*.response.json``: ``{"anthropic": reply, "openai": expected reply minus created, "usage": [p, c, cached]}``;
* ``*.stream.json``: ``{"anthropic_sse": raw stream, "openai_chunks": expected data payloads in order
  (chunk objects minus created, and the string "[DONE]"), "include_usage", "usage", "finished"}``.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from openai_spec import validate

from gateway.catalog.registry import BackendTarget, ModelRoute, Prices
from gateway.errors import InvalidRequest, UnsupportedEndpoint, UpstreamError, UpstreamRejected
from gateway.providers.anthropic import DEFAULT_MAX_TOKENS, AnthropicAdapter
from gateway.providers.credentials import StaticKey
from gateway.wire.endpoints import CHAT, EMBEDDINGS
from gateway.wire.usage import Usage

GOLDEN = Path(__file__).parent / "golden" / "anthropic"
REQUEST_CASES = sorted(p.name for p in GOLDEN.glob("*.request.json"))
RESPONSE_CASES = sorted(p.name for p in GOLDEN.glob("*.response.json"))
STREAM_CASES = sorted(p.name for p in GOLDEN.glob("*.stream.json"))


def _route(params: dict[str, Any] | None = None) -> ModelRoute:
    backend = BackendTarget(
        uuid.uuid4(),
        "anthropic",
        "anthropic",
        "https://api.anthropic.com/v1",
        None,
        credentials=StaticKey("x-api-key", "k"),
    )
    return ModelRoute(
        model="claude",
        model_id=uuid.uuid4(),
        version_id=uuid.uuid4(),
        version=1,
        backend=backend,
        upstream_model="claude-sonnet-4-5",
        params=params or {},
        prices=Prices(),
        created=0,
    )


def _golden(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((GOLDEN / name).read_text(encoding="utf-8"))
    return loaded


def _translate_request(payload: dict[str, Any], params: dict[str, Any] | None = None) -> dict[str, Any]:
    upstream = AnthropicAdapter().request(CHAT, payload, _route(params))
    body: dict[str, Any] = json.loads(upstream.body)
    return body


def _payloads(stream: bytes) -> list[Any]:
    """The ``data:`` payloads of an OpenAI SSE stream, decoded; ``[DONE]`` kept as a string."""
    assert stream.endswith(b"\n\n") or not stream
    out: list[Any] = []
    for event in stream.decode().split("\n\n")[:-1]:
        assert event.startswith("data: ") and "\n" not in event, event
        data = event[len("data: ") :]
        out.append(data if data == "[DONE]" else json.loads(data))
    return out


def _without_created(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: v for k, v in obj.items() if k != "created"}
    return obj


# --- requests ---------------------------------------------------------------------------------


def test_golden_cases_are_present() -> None:
    assert len(REQUEST_CASES) >= 6 and len(RESPONSE_CASES) >= 4 and len(STREAM_CASES) >= 2


@pytest.mark.parametrize("name", REQUEST_CASES)
def test_request_matches_golden(name: str) -> None:
    case = _golden(name)
    assert _translate_request(case["openai"], case["params"]) == case["anthropic"]


def test_request_url_and_headers() -> None:
    upstream = AnthropicAdapter().request(
        CHAT, {"model": "claude", "messages": [{"role": "user", "content": "hi"}]}, _route()
    )
    assert upstream.url == "https://api.anthropic.com/v1/messages"
    assert upstream.headers == {
        "content-type": "application/json",
        "anthropic-version": "2023-06-01",
        "x-api-key": "k",
    }


def test_request_defaults_max_tokens_to_the_constant() -> None:
    body = _translate_request({"model": "claude", "messages": [{"role": "user", "content": "hi"}]})
    assert body["max_tokens"] == DEFAULT_MAX_TOKENS == 4096


def test_client_max_completion_tokens_beats_route_max_tokens() -> None:
    payload = {"model": "claude", "max_completion_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
    assert _translate_request(payload, {"max_tokens": 1000})["max_tokens"] == 50


def test_parallel_tool_calls_false_without_tool_choice_uses_auto() -> None:
    payload = {
        "model": "claude",
        "parallel_tool_calls": False,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "messages": [{"role": "user", "content": "hi"}],
    }
    assert _translate_request(payload)["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


def test_tool_choice_none_and_auto() -> None:
    tools = [{"type": "function", "function": {"name": "f"}}]
    for openai_choice, anthropic_choice in (("none", {"type": "none"}), ("auto", {"type": "auto"})):
        payload = {
            "model": "c",
            "tools": tools,
            "tool_choice": openai_choice,
            "messages": [{"role": "user", "content": "x"}],
        }
        assert _translate_request(payload)["tool_choice"] == anthropic_choice


@pytest.mark.parametrize(
    ("payload_update", "param"),
    [
        ({"n": 2}, "n"),
        (
            {
                "messages": [
                    {"role": "assistant", "tool_calls": [{"id": "t", "function": {"name": "f", "arguments": "{oops"}}]}
                ]
            },
            None,
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]}]},
            None,
        ),
        ({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]}, None),
        ({"messages": [{"role": "tool", "content": "no id"}]}, "messages[0].tool_call_id"),
        ({"tool_choice": "sometimes"}, "tool_choice"),
    ],
)
def test_request_rejects_what_anthropic_cannot_do(payload_update: dict[str, Any], param: str | None) -> None:
    payload = {"model": "claude", "messages": [{"role": "user", "content": "hi"}], **payload_update}
    with pytest.raises(InvalidRequest) as caught:
        AnthropicAdapter().request(CHAT, payload, _route())
    if param is not None:
        assert caught.value.param == param


def test_other_endpoints_are_unsupported() -> None:
    with pytest.raises(UnsupportedEndpoint, match="chat/completions"):
        AnthropicAdapter().request(EMBEDDINGS, {"model": "claude", "input": "hi"}, _route())


# --- responses --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", RESPONSE_CASES)
def test_response_matches_golden(name: str) -> None:
    case = _golden(name)
    body, usage = AnthropicAdapter().response(CHAT, json.dumps(case["anthropic"]).encode())
    completion = json.loads(body)
    validate("CreateChatCompletionResponse", completion)
    assert isinstance(completion["created"], int)
    assert _without_created(completion) == case["openai"]
    assert usage == Usage(*case["usage"])


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"type": "message"}', b'{"content": [1]}'])
def test_malformed_response_is_an_upstream_error(body: bytes) -> None:
    with pytest.raises(UpstreamError):
        AnthropicAdapter().response(CHAT, body)


# --- streams ----------------------------------------------------------------------------------


def _run_stream(case: dict[str, Any], pieces: list[bytes]) -> tuple[bytes, Any]:
    payload: dict[str, Any] = {"model": "claude", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    if case["include_usage"]:
        payload["stream_options"] = {"include_usage": True}
    tap = AnthropicAdapter().stream(CHAT, payload)
    out = b"".join(tap.feed(piece) for piece in pieces) + tap.close()
    assert bytes(tap.forwarded) == out
    return out, tap


@pytest.mark.parametrize("name", STREAM_CASES)
def test_stream_matches_golden(name: str) -> None:
    case = _golden(name)
    out, tap = _run_stream(case, [case["anthropic_sse"].encode()])
    chunks = _payloads(out)
    assert [_without_created(chunk) for chunk in chunks] == case["openai_chunks"]
    assert tap.usage == Usage(*case["usage"])
    assert tap.finished is case["finished"]
    objects = [chunk for chunk in chunks if isinstance(chunk, dict) and "error" not in chunk]
    for chunk in objects:
        validate("CreateChatCompletionStreamResponse", chunk)
    assert len({(c["id"], c["created"], c["model"], c["object"]) for c in objects}) == 1


@pytest.mark.parametrize("name", STREAM_CASES)
def test_stream_split_at_every_byte_gives_the_same_output(name: str) -> None:
    case = _golden(name)
    raw = case["anthropic_sse"].encode()
    whole, _ = _run_stream(case, [raw])
    by_byte, tap = _run_stream(case, [raw[i : i + 1] for i in range(len(raw))])
    assert _strip_created(by_byte) == _strip_created(whole)
    assert tap.usage == Usage(*case["usage"])


@pytest.mark.parametrize("name", STREAM_CASES)
def test_stream_tolerates_crlf(name: str) -> None:
    case = _golden(name)
    raw = case["anthropic_sse"].encode()
    crlf = raw.replace(b"\n", b"\r\n")
    whole, _ = _run_stream(case, [raw])
    split, _ = _run_stream(case, [crlf[i : i + 7] for i in range(0, len(crlf), 7)])
    assert _strip_created(split) == _strip_created(whole)


def _strip_created(stream: bytes) -> list[Any]:
    return [_without_created(chunk) for chunk in _payloads(stream)]


def test_stream_without_include_usage_still_records_usage() -> None:
    case = _golden("text.stream.json")
    out, tap = _run_stream({**case, "include_usage": False}, [case["anthropic_sse"].encode()])
    assert all(chunk == "[DONE]" or chunk["choices"] for chunk in _payloads(out))
    assert tap.usage == Usage(25, 15, 0)


def test_stream_last_event_without_blank_line_is_flushed_by_close() -> None:
    case = _golden("text.stream.json")
    raw = case["anthropic_sse"].encode().rstrip(b"\n")
    out, tap = _run_stream(case, [raw])
    assert out.endswith(b"data: [DONE]\n\n") and tap.finished


# --- errors -----------------------------------------------------------------------------------


def _error(status: int, error_type: str, message: str, retry_after: str | None = None) -> Any:
    body = json.dumps({"type": "error", "error": {"type": error_type, "message": message}}).encode()
    return AnthropicAdapter().error(_route(), status, body, retry_after)


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failure_hides_the_backends_text(status: int) -> None:
    error = _error(status, "authentication_error", "invalid x-api-key sk-ant-abc123")
    assert isinstance(error, UpstreamError)
    assert error.code == "backend_auth_failed"
    assert "sk-ant" not in error.message and "x-api-key" not in error.message


def test_overloaded_becomes_503_with_a_retry_hint() -> None:
    error = _error(529, "overloaded_error", "Overloaded")
    assert isinstance(error, UpstreamRejected)
    assert (error.status, error.type, error.code, error.retry_after) == (503, "api_error", "overloaded", "1")
    assert _error(529, "overloaded_error", "Overloaded", "30").retry_after == "30"


def test_rate_limit_keeps_message_and_retry_after() -> None:
    error = _error(429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit", "12")
    assert isinstance(error, UpstreamRejected)
    assert (error.status, error.type, error.retry_after) == (429, "rate_limit_error", "12")
    assert "per-minute rate limit" in error.message


@pytest.mark.parametrize(
    ("status", "error_type", "openai_type"),
    [
        (400, "invalid_request_error", "invalid_request_error"),
        (404, "not_found_error", "invalid_request_error"),
        (413, "request_too_large", "invalid_request_error"),
    ],
)
def test_client_errors_pass_on_with_openai_types(status: int, error_type: str, openai_type: str) -> None:
    error = _error(status, error_type, "messages: text content blocks must be non-empty")
    assert isinstance(error, UpstreamRejected)
    assert (error.status, error.type, error.message) == (
        status,
        openai_type,
        "messages: text content blocks must be non-empty",
    )


def test_server_errors_keep_the_backends_message() -> None:
    error = _error(500, "api_error", "Internal server error")
    assert isinstance(error, UpstreamError)
    assert "Internal server error" in error.message and "500" in error.message
    assert isinstance(AnthropicAdapter().error(_route(), 502, b"<html>bad gateway</html>", None), UpstreamError)
