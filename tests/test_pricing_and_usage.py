"""Integer pricing, reading OpenAI usage objects, and the SSE tap that relays streams."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from typing import Any

import pytest

from gateway.catalog.registry import Prices
from gateway.ledger.tokens import estimate_stream_usage
from gateway.providers.sse import OpenAIStreamTap
from gateway.wire.usage import Usage

# $0.15 / $0.075 / $0.60 per million tokens, in micro-USD per million tokens.
PRICES = Prices(input=150_000, cached_input=75_000, output=600_000)


def cost(prices: Prices, prompt: int, cached: int, completion: int, **units: int) -> int:
    usage = Usage(prompt_tokens=prompt, cached_tokens=cached, completion_tokens=completion, **units)
    return prices.cost_nano_usd(usage)


def test_cost_is_tokens_times_price_in_nano_usd() -> None:
    # 1000 prompt tokens at $0.15/M = $0.00015; 500 completion tokens at $0.60/M = $0.0003.
    assert cost(PRICES, 1000, 0, 500) == 150_000 + 300_000


def test_cached_tokens_are_priced_at_the_cached_rate() -> None:
    # 600 uncached at 150000 + 400 cached at 75000 = 120_000_000 pico-USD.
    assert cost(PRICES, 1000, 400, 0) == 120_000


def test_cost_rounds_up_to_the_next_nano_usd() -> None:
    one_micro = Prices(input=1, cached_input=1, output=1)
    assert cost(one_micro, 1, 0, 0) == 1
    assert cost(one_micro, 1000, 0, 0) == 1
    assert cost(one_micro, 1001, 0, 0) == 2
    assert cost(one_micro, 0, 0, 1999) == 2


def test_zero_prices_cost_nothing() -> None:
    assert cost(Prices(), 123_456, 1000, 654_321) == 0


def test_no_tokens_cost_nothing() -> None:
    assert cost(PRICES, 0, 0, 0) == 0


def test_cached_tokens_beyond_prompt_tokens_are_clamped() -> None:
    assert cost(PRICES, 100, 500, 0) == cost(PRICES, 100, 100, 0)
    assert cost(PRICES, 100, 500, 0) == 7_500


def test_negative_cached_and_completion_tokens_count_as_zero() -> None:
    assert cost(PRICES, 1000, -5, -7) == cost(PRICES, 1000, 0, 0)


def test_cache_writes_are_priced_at_their_own_rate() -> None:
    # Anthropic-style: 1000 prompt tokens, 200 read from the cache, 300 written to it.
    prices = Prices(input=3_000_000, cached_input=300_000, cache_write_input=3_750_000, output=0)
    pico = 500 * 3_000_000 + 200 * 300_000 + 300 * 3_750_000
    assert cost(prices, 1000, 200, 0, cache_write_tokens=300) == pico // 1000
    # More written than the prompt holds besides the cached part: clamped to what is left.
    assert cost(prices, 1000, 200, 0, cache_write_tokens=5000) == cost(prices, 1000, 200, 0, cache_write_tokens=800)


def test_images_seconds_and_characters_have_prices_of_their_own() -> None:
    # $0.04 per image, $0.0001 per second ($0.006 / minute), $15 per million characters.
    prices = Prices(image=40_000, audio_second=100, characters=15_000_000)
    assert cost(prices, 0, 0, 0, images=3) == 3 * 40_000_000  # 3 x $0.04 in nano-USD
    assert cost(prices, 0, 0, 0, audio_ms=61_500) == 6_150_000  # 61.5 s x $0.0001
    assert cost(prices, 0, 0, 0, characters=1000) == 15_000_000  # 1000 x $0.000015
    assert cost(prices, 0, 0, 0, audio_ms=1) == 100  # one millisecond, exactly


def test_cost_is_exact_integer_math_at_large_values() -> None:
    prices = Prices(input=999_999_999, cached_input=1, output=123_456_789)
    total = cost(prices, 10**9 + 7, 3, 10**9 + 9)
    pico = (10**9 + 4) * 999_999_999 + 3 * 1 + (10**9 + 9) * 123_456_789
    assert isinstance(total, int)
    assert total == -(-pico // 1000)


def test_usage_is_read_from_a_full_openai_usage_object() -> None:
    usage = {
        "prompt_tokens": 12,
        "completion_tokens": 7,
        "total_tokens": 19,
        "prompt_tokens_details": {"cached_tokens": 4, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    assert Usage.from_openai(usage) == Usage(prompt_tokens=12, completion_tokens=7, cached_tokens=4)


@pytest.mark.parametrize("usage", [None, [], "12", 12, True])
def test_absent_or_non_object_usage_is_none(usage: Any) -> None:
    assert Usage.from_openai(usage) is None


def test_usage_without_details_has_no_cached_tokens() -> None:
    assert Usage.from_openai({"prompt_tokens": 3, "completion_tokens": 2}) == Usage(3, 2, 0)


def test_empty_usage_object_counts_zero() -> None:
    assert Usage.from_openai({}) == Usage(0, 0, 0)


@pytest.mark.parametrize("bad", ["12", 12.0, -3, True, None, [12], {"n": 12}])
def test_malformed_counts_are_read_as_zero(bad: Any) -> None:
    usage = {"prompt_tokens": bad, "completion_tokens": bad, "prompt_tokens_details": {"cached_tokens": bad}}
    assert Usage.from_openai(usage) == Usage(0, 0, 0)


@pytest.mark.parametrize("details", [None, [], "4", 4])
def test_malformed_prompt_details_mean_no_cached_tokens(details: Any) -> None:
    usage = {"prompt_tokens": 5, "completion_tokens": 1, "prompt_tokens_details": details}
    assert Usage.from_openai(usage) == Usage(5, 1, 0)


USAGE = {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19, "prompt_tokens_details": {"cached_tokens": 4}}


def _event(chunk: dict[str, Any] | str) -> bytes:
    data = chunk if isinstance(chunk, str) else json.dumps(chunk)
    return f"data: {data}\n\n".encode()


def _chunk(content: str | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    delta = {"content": content} if content is not None else {}
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [choice], **extra}


CONTENT_EVENTS = [
    _event(_chunk("Hel", usage=None)),
    _event(_chunk("lo, wörld", usage=None)),
    _event(_chunk(finish="stop", usage=None)),
]
USAGE_EVENT = _event({"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [], "usage": USAGE})
DONE_EVENT = _event("[DONE]")
STREAM = b"".join([*CONTENT_EVENTS, USAGE_EVENT, DONE_EVENT])
STREAM_WITHOUT_USAGE_EVENT = b"".join([*CONTENT_EVENTS, DONE_EVENT])


def _relay(tap: OpenAIStreamTap, chunks: Iterable[bytes]) -> bytes:
    out = b"".join(tap.feed(chunk) for chunk in chunks)
    return out + tap.close()


def _bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def _random_splits(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(data)), rng.randint(1, 40)))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def test_stream_passes_through_unchanged_when_usage_chunk_is_kept() -> None:
    tap = OpenAIStreamTap(strip_usage_chunk=False)
    assert _relay(tap, [STREAM]) == STREAM
    assert tap.usage == Usage(prompt_tokens=12, completion_tokens=7, cached_tokens=4)


def test_usage_only_chunk_is_removed_when_stripping_and_usage_still_captured() -> None:
    tap = OpenAIStreamTap(strip_usage_chunk=True)
    assert _relay(tap, [STREAM]) == STREAM_WITHOUT_USAGE_EVENT
    assert tap.usage == Usage(prompt_tokens=12, completion_tokens=7, cached_tokens=4)


@pytest.mark.parametrize("strip", [False, True])
def test_byte_by_byte_feeding_gives_the_same_output(strip: bool) -> None:
    whole = _relay(OpenAIStreamTap(strip_usage_chunk=strip), [STREAM])
    tap = OpenAIStreamTap(strip_usage_chunk=strip)
    assert _relay(tap, _bytewise(STREAM)) == whole
    assert tap.usage == Usage(12, 7, 4)


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("strip", [False, True])
def test_arbitrary_chunk_boundaries_give_the_same_output(strip: bool, seed: int) -> None:
    expected = STREAM_WITHOUT_USAGE_EVENT if strip else STREAM
    tap = OpenAIStreamTap(strip_usage_chunk=strip)
    assert _relay(tap, _random_splits(STREAM, seed)) == expected
    assert tap.usage == Usage(12, 7, 4)


@pytest.mark.parametrize("strip", [False, True])
def test_crlf_line_endings_are_understood(strip: bool) -> None:
    crlf = STREAM.replace(b"\n", b"\r\n")
    expected = STREAM_WITHOUT_USAGE_EVENT if strip else STREAM
    for chunks in ([crlf], _bytewise(crlf), _random_splits(crlf, 7)):
        tap = OpenAIStreamTap(strip_usage_chunk=strip)
        assert _relay(tap, chunks) == expected
        assert tap.usage == Usage(12, 7, 4)


def test_complete_events_are_forwarded_at_once_and_a_partial_one_waits() -> None:
    tap = OpenAIStreamTap(strip_usage_chunk=True)
    first, second = CONTENT_EVENTS[0], CONTENT_EVENTS[1]
    assert tap.feed(first + second[:10]) == first
    assert tap.feed(second[10:]) == second


def test_usage_on_a_chunk_with_choices_is_captured_and_kept() -> None:
    last = _event(_chunk(finish="stop", usage=USAGE))
    stream = CONTENT_EVENTS[0] + last + DONE_EVENT
    tap = OpenAIStreamTap(strip_usage_chunk=True)
    assert _relay(tap, _bytewise(stream)) == stream
    assert tap.usage == Usage(12, 7, 4)


def test_forwarded_holds_exactly_what_was_relayed() -> None:
    tap = OpenAIStreamTap(strip_usage_chunk=True)
    out = _relay(tap, _random_splits(STREAM, 3))
    assert bytes(tap.forwarded) == out


def test_stream_without_usage_leaves_usage_unset() -> None:
    tap = OpenAIStreamTap(strip_usage_chunk=True)
    assert _relay(tap, [STREAM_WITHOUT_USAGE_EVENT]) == STREAM_WITHOUT_USAGE_EVENT
    assert tap.usage is None


def test_trailing_event_without_blank_line_is_flushed_on_close() -> None:
    tap = OpenAIStreamTap(strip_usage_chunk=False)
    assert tap.feed(CONTENT_EVENTS[0] + b"data: [DONE]") == CONTENT_EVENTS[0]
    assert tap.close() == DONE_EVENT


def test_cut_short_stream_is_estimated_from_what_was_forwarded() -> None:
    payload = {"model": "m", "messages": [{"role": "user", "content": "Say hello to the whole world, please."}]}
    tap = OpenAIStreamTap(strip_usage_chunk=True)
    cut = CONTENT_EVENTS[0] + CONTENT_EVENTS[1] + CONTENT_EVENTS[2][:15]
    _relay(tap, _bytewise(cut))
    assert tap.usage is None
    usage = estimate_stream_usage(payload, bytes(tap.forwarded))
    assert usage.prompt_tokens > 0
    assert usage.completion_tokens > 0
    assert usage.cached_tokens == 0


def test_estimate_counts_no_completion_for_an_empty_stream() -> None:
    usage = estimate_stream_usage({"prompt": "Once upon a time"}, b"")
    assert usage.prompt_tokens > 0
    assert usage.completion_tokens == 0
