"""The Anthropic Messages ingress: Anthropic requests in, OpenAI chat out, and back again.

Golden files live in ``tests/golden/anthropic_ingress/``:

* ``*.request.json``: ``{"anthropic": Messages request, "openai": expected chat request}``;
* ``*.response.json``: ``{"openai": chat.completion, "requested_model", "anthropic": expected message}``;
* ``*.stream.json``: ``{"openai_sse": raw chunk stream, "requested_model", "anthropic_events": expected
  [event, data] pairs in order, "usage": [prompt, completion, cached] or null, "finished"}``;
* ``invalid_requests.json``: ``[{"body": Messages request, "param": the field its error names}]``.

Everything produced is also parsed with the official ``anthropic`` SDK's models, and driven through
the SDK's own client over an in-memory transport.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pydantic
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from anthropic.types.shared import ErrorResponse

from gateway.errors import InvalidRequest, UpstreamError
from gateway.ingress.anthropic_messages import (
    AnthropicEventStream,
    anthropic_error_body,
    count_tokens_body,
    count_tokens_request,
    to_anthropic_message,
    to_openai_request,
)
from gateway.ingress.anthropic_messages_stream import message_id
from gateway.providers.anthropic_request import translate_request
from gateway.providers.base import StreamTap

GOLDEN = Path(__file__).parent / "golden" / "anthropic_ingress"
REQUEST_CASES = sorted(p.name for p in GOLDEN.glob("*.request.json"))
RESPONSE_CASES = sorted(p.name for p in GOLDEN.glob("*.response.json"))
STREAM_CASES = sorted(p.name for p in GOLDEN.glob("*.stream.json"))
EVENTS: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(RawMessageStreamEvent)
USER = [{"role": "user", "content": "Hello"}]

Json = dict[str, Any]


def _golden(name: str) -> Json:
    loaded: Json = json.loads((GOLDEN / name).read_text(encoding="utf-8"))
    return loaded


def _events(stream: bytes) -> list[list[Any]]:
    """[event, data] pairs; every event is exactly an ``event:`` line and a ``data:`` line naming the same type."""
    assert stream.endswith(b"\n\n")
    out: list[list[Any]] = []
    for raw in stream.decode().split("\n\n")[:-1]:
        event_line, data_line = raw.split("\n")
        assert event_line.startswith("event: ") and data_line.startswith("data: "), raw
        name, data = event_line[len("event: ") :], json.loads(data_line[len("data: ") :])
        assert data["type"] == name
        out.append([name, data])
    return out


def _relay(sse: bytes, *, byte_by_byte: bool = False, model: str = "claude") -> tuple[bytes, AnthropicEventStream]:
    tap = AnthropicEventStream(model)
    pieces = [sse[i : i + 1] for i in range(len(sse))] if byte_by_byte else [sse]
    out = b"".join(tap.feed(piece) for piece in pieces) + tap.close()
    assert bytes(tap.forwarded) == out
    return out, tap


def _chunk(delta: Json | None = None, finish: str | None = None, **extra: Any) -> bytes:
    chunk = {"id": "chatcmpl-x", "object": "chat.completion.chunk", "model": "m", **extra}
    chunk.setdefault("choices", [{"index": 0, "delta": delta or {}, "finish_reason": finish}])
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


# --- requests ---------------------------------------------------------------------------------


def test_golden_cases_are_present() -> None:
    assert len(REQUEST_CASES) >= 8 and len(RESPONSE_CASES) >= 4 and len(STREAM_CASES) >= 3


@pytest.mark.parametrize("name", REQUEST_CASES)
def test_request_matches_golden(name: str) -> None:
    case = _golden(name)
    assert to_openai_request(case["anthropic"]) == case["openai"]


def test_tool_use_and_results_survive_the_round_trip_through_the_anthropic_backend() -> None:
    body = _golden("tool_round_trip.request.json")["anthropic"]
    back = translate_request(to_openai_request(body), {}, "claude-sonnet-4-5")
    assert back["messages"][1]["content"] == body["messages"][1]["content"]
    results = back["messages"][2]["content"]
    assert [block["tool_use_id"] for block in results[:2]] == ["toolu_01A09q90qw90lq917835lq9", "toolu_01B"]
    assert results[2] == {"type": "text", "text": "Summarise please."}
    assert back["tools"] == [{k: v for k, v in tool.items() if k != "cache_control"} for tool in body["tools"]]


def test_count_tokens_request_needs_no_max_tokens() -> None:
    request = count_tokens_request({"model": "claude", "system": "Be brief.", "messages": USER})
    assert request == {"model": "claude", "messages": [{"role": "system", "content": "Be brief."}, *USER]}
    assert count_tokens_body(14) == {"input_tokens": 14}


def test_stream_false_passes_and_metadata_without_user_is_dropped() -> None:
    request = to_openai_request({"model": "c", "max_tokens": 5, "messages": USER, "stream": False, "metadata": {}})
    assert request == {"model": "c", "max_tokens": 5, "messages": USER}


@pytest.mark.parametrize("case", _golden("invalid_requests.json"), ids=lambda case: str(case["param"]))
def test_invalid_requests_name_the_field(case: Json) -> None:
    with pytest.raises(InvalidRequest) as caught:
        to_openai_request(case["body"])
    assert caught.value.param == case["param"]
    assert caught.value.message.startswith(case["param"])


# --- responses --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", RESPONSE_CASES)
def test_response_matches_golden_and_parses_with_the_sdk(name: str) -> None:
    case = _golden(name)
    message = to_anthropic_message(case["openai"], case["requested_model"])
    assert message == case["anthropic"]
    parsed = Message.model_validate(message)
    assert parsed.model_dump(exclude_unset=True) == message


def test_response_without_usage_or_id_and_with_text_parts() -> None:
    completion = {"choices": [{"message": {"role": "assistant", "content": [{"type": "text", "text": "Hi"}]}}]}
    message = to_anthropic_message(completion, "claude")
    assert message["id"].startswith("msg_") and len(message["id"]) > 10
    assert message["content"] == [{"type": "text", "text": "Hi"}] and message["stop_reason"] == "end_turn"
    assert set(message["usage"].values()) == {0}


def test_tool_calls_with_finish_reason_stop_still_stop_for_tool_use() -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "[1]"}}
    completion = {"id": "x", "choices": [{"message": {"content": "", "tool_calls": [call]}, "finish_reason": "stop"}]}
    message = to_anthropic_message(completion, "claude")
    assert message["content"] == [{"type": "tool_use", "id": "call_1", "name": "f", "input": {}}]
    assert message["stop_reason"] == "tool_use"


@pytest.mark.parametrize("completion", [{}, {"choices": []}, {"choices": [{"finish_reason": "stop"}]}])
def test_response_without_a_message_is_an_upstream_error(completion: Json) -> None:
    with pytest.raises(UpstreamError):
        to_anthropic_message(completion, "claude")


def test_message_id_unwraps_the_gateways_own_ids() -> None:
    assert message_id("chatcmpl-msg_01ABC") == "msg_01ABC"
    assert message_id("chatcmpl-123") == "msg_123"
    assert message_id("gen-9") == "msg_gen-9"


# --- streams ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", STREAM_CASES)
def test_stream_matches_golden_whole_and_byte_by_byte(name: str) -> None:
    case = _golden(name)
    sse = case["openai_sse"].encode()
    whole, tap = _relay(sse, model=case["requested_model"])
    split, split_tap = _relay(sse, byte_by_byte=True, model=case["requested_model"])
    assert whole == split
    assert _events(whole) == case["anthropic_events"]
    for found in (tap, split_tap):
        usage = found.usage
        assert (None if usage is None else [usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens]) == case[
            "usage"
        ]
        assert found.finished is case["finished"]
    for kind, data in case["anthropic_events"]:
        if kind == "error":
            ErrorResponse.model_validate(data)
        else:
            EVENTS.validate_python(data)


def test_event_stream_is_a_stream_tap() -> None:
    tap: StreamTap = AnthropicEventStream("claude")
    assert tap.usage is None and tap.finished is False and tap.forwarded == bytearray()


def test_crlf_keep_alives_and_a_final_done_without_blank_line() -> None:
    sse = (
        b": keep-alive\r\n\r\n"
        + _chunk({"content": "A"})
        + b": keep-alive\n\n"
        + _chunk({}, "length")
        + b"data: [DONE]"
    ).replace(b"\n", b"\r\n")
    out, tap = _relay(sse, byte_by_byte=True)
    kinds = [kind for kind, _ in _events(out)]
    assert kinds == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "ping",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert _events(out)[5][1]["delta"]["stop_reason"] == "max_tokens"
    assert tap.finished and tap.usage is None


def test_tool_only_stream_starts_at_index_zero_and_ignores_what_follows_done() -> None:
    call = {"index": 0, "id": "call_9", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    sse = _chunk({"tool_calls": [call]}) + _chunk({}, "stop") + b"data: [DONE]\n\n" + _chunk({"content": "late"})
    events = _events(_relay(sse)[0])
    assert events[1][1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "tool_use", "id": "call_9", "name": "f", "input": {}},
    }
    assert events[2][1]["delta"] == {"type": "input_json_delta", "partial_json": '{"a": 1}'}
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use" and events[-1][0] == "message_stop"


def test_text_after_a_tool_call_opens_a_new_block() -> None:
    call = {"index": 0, "id": "call_1", "function": {"name": "f", "arguments": "{}"}}
    sse = _chunk({"content": "a"}) + _chunk({"tool_calls": [call]}) + _chunk({"content": "b"}) + b"data: [DONE]\n\n"
    starts = [data["index"] for kind, data in _events(_relay(sse)[0]) if kind == "content_block_start"]
    assert starts == [0, 1, 2]


def test_oversized_event_becomes_an_error_event() -> None:
    out, tap = _relay(_chunk({"content": "a"}) + b"data: " + b"x" * (1 << 21))
    assert _events(out)[-1] == [
        "error",
        {"type": "error", "error": {"type": "api_error", "message": "The backend sent an event too large to relay."}},
    ]
    assert not tap.finished


def test_done_alone_still_makes_a_complete_message() -> None:
    kinds = [kind for kind, _ in _events(_relay(b"data: [DONE]\n\n")[0])]
    assert kinds == ["message_start", "message_delta", "message_stop"]


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (409, "invalid_request_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "overloaded_error"),
        (504, "api_error"),
    ],
)
def test_error_body(status: int, kind: str) -> None:
    body = anthropic_error_body(status, "Nope.")
    assert body == {"type": "error", "error": {"type": kind, "message": "Nope."}}
    if kind != "request_too_large":  # documented by Anthropic, absent from the SDK's error union
        ErrorResponse.model_validate(body)


# --- through the official SDK -----------------------------------------------------------------


def _sdk(answer: Any, sent: list[Json], status: int = 200) -> anthropic.Anthropic:
    """A client whose HTTP calls are answered in memory: the request goes through the ingress first."""

    def handle(request: httpx2.Request) -> httpx2.Response:
        sent.append(to_openai_request(json.loads(request.content)))
        if isinstance(answer, bytes):
            return httpx2.Response(status, content=answer, headers={"content-type": "text/event-stream"})
        return httpx2.Response(status, json=answer)

    http = httpx2.Client(transport=httpx2.MockTransport(handle))
    return anthropic.Anthropic(api_key="k", base_url="http://gateway.test", http_client=http, max_retries=0)


def test_sdk_create_reads_the_translated_message() -> None:
    case = _golden("tool_use.response.json")
    sent: list[Json] = []
    client = _sdk(to_anthropic_message(case["openai"], "gateway-claude"), sent)
    message = client.messages.create(
        model="gateway-claude", max_tokens=50, messages=[{"role": "user", "content": "Paris?"}]
    )
    assert sent == [{"model": "gateway-claude", "max_tokens": 50, "messages": [{"role": "user", "content": "Paris?"}]}]
    assert message.stop_reason == "tool_use"
    assert [block.type for block in message.content] == ["text", "tool_use", "tool_use"]
    assert message.content[1].type == "tool_use" and message.content[1].input == {"location": "Paris, France"}


def test_sdk_stream_helper_rebuilds_the_final_message() -> None:
    case = _golden("tool_calls.stream.json")
    sse, _ = _relay(case["openai_sse"].encode())
    sent: list[Json] = []
    client = _sdk(sse, sent)
    with client.messages.stream(
        model="gateway-claude", max_tokens=50, messages=[{"role": "user", "content": "Hi"}]
    ) as stream:
        message = stream.get_final_message()
    assert sent[0]["stream"] is True and sent[0]["stream_options"] == {"include_usage": True}
    assert message.content[0].type == "text" and message.content[0].text == "Checking."
    assert message.content[1].type == "tool_use" and message.content[1].input == {"location": "Paris"}
    assert message.content[2].type == "tool_use" and message.content[2].name == "get_time"
    assert message.stop_reason == "tool_use"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (80, 25)


def test_sdk_raises_the_in_band_stream_error() -> None:
    sse, _ = _relay(_golden("error.stream.json")["openai_sse"].encode())
    client = _sdk(sse, [])
    stream = client.messages.create(model="c", max_tokens=5, messages=[{"role": "user", "content": "Hi"}], stream=True)
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError, match="sent nothing more"):
        seen.extend(event.type for event in stream)
    assert seen == ["message_start", "content_block_start", "content_block_delta"]


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, anthropic.BadRequestError),
        (401, anthropic.AuthenticationError),
        (404, anthropic.NotFoundError),
        (429, anthropic.RateLimitError),
    ],
)
def test_sdk_raises_its_own_exception_for_error_bodies(status: int, error: type[anthropic.APIStatusError]) -> None:
    client = _sdk(anthropic_error_body(status, "Denied."), [], status)
    with pytest.raises(error) as caught:
        client.messages.create(model="c", max_tokens=5, messages=[{"role": "user", "content": "Hi"}])
    assert isinstance(caught.value.body, dict) and caught.value.body["error"]["message"] == "Denied."
