"""Markers inside a requested model name that make the fake upstream misbehave on purpose.

`slow-<ms>` delays the response headers, `chunkdelay-<ms>` spaces stream events, `error-<status>`
answers that error (400-599 only), `hang` never answers, `tokens-<p>-<c>` fixes the usage exactly
`streamerror` cuts a stream off after a few events, `nodone` ends a stream cleanly but without
`[DONE]`, and `notsse` answers a stream request with a plain JSON body. Matching ignores case, and a marker must
start at a word boundary: e.g. "streamerror" is not read as "error-...".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from fakes.fake_validation import RequestError

_NUMBER_MARKER = re.compile(r"(?<![a-z0-9])(slow|chunkdelay|error)-(\d+)(?!\d)")
_TOKENS_MARKER = re.compile(r"(?<![a-z0-9])tokens-(\d+)-(\d+)(?!\d)")
_HANG_MARKER = re.compile(r"(?<![a-z0-9])hang(?![a-z0-9])")
_STREAM_ERROR_MARKER = re.compile(r"(?<![a-z0-9])streamerror(?![a-z0-9])")
_NO_DONE_MARKER = re.compile(r"(?<![a-z0-9])nodone(?![a-z0-9])")
_NOT_SSE_MARKER = re.compile(r"(?<![a-z0-9])notsse(?![a-z0-9])")


@dataclass(frozen=True, slots=True)
class Behaviour:
    """What the markers inside a model name ask the fake to do."""

    slow_ms: int = 0
    chunk_delay_ms: int = 0
    error_status: int | None = None
    hang: bool = False
    tokens: tuple[int, int] | None = None
    stream_error: bool = False
    no_done: bool = False
    not_sse: bool = False


BehaviourLookup = Callable[[str], Behaviour]


def parse_behaviour(model: str) -> Behaviour:
    name = model.lower()
    numbers: dict[str, int] = {key: int(value) for key, value in _NUMBER_MARKER.findall(name)}
    tokens = _TOKENS_MARKER.search(name)
    status = numbers.get("error")
    return Behaviour(
        slow_ms=numbers.get("slow", 0),
        chunk_delay_ms=numbers.get("chunkdelay", 0),
        # Only real error statuses: "error-200" would be a confusing way to ask for success.
        error_status=status if status is not None and 400 <= status <= 599 else None,
        hang=_HANG_MARKER.search(name) is not None,
        tokens=(int(tokens.group(1)), int(tokens.group(2))) if tokens else None,
        stream_error=_STREAM_ERROR_MARKER.search(name) is not None,
        no_done=_NO_DONE_MARKER.search(name) is not None,
        not_sse=_NOT_SSE_MARKER.search(name) is not None,
    )


def marker_error(status: int) -> RequestError:
    """The error chosen by an `error-<status>` model marker."""
    if status == 429:
        return RequestError(429, "fake upstream error 429", code="rate_limit_exceeded", headers=(("retry-after", "1"),))
    if status == 404:  # OpenAI's 404 for a model it does not serve
        return RequestError(404, "The model does not exist or you do not have access to it.", code="model_not_found")
    return RequestError(status, f"fake upstream error {status}")
