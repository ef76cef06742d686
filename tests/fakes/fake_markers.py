"""Markers inside a requested model name that make the fake upstream misbehave on purpose.

Timing: `slow-<ms>` delays the response headers; `firstbyte-<ms>` sends the headers at once and
delays the first stream event (or a plain body) by ms; `chunkdelay-<ms>` spaces the later stream
events; `hang` never answers; `hangstream` sends the headers and the first stream event (only the
headers of a plain body) and then nothing, until the client or the server goes away.

Failures: `error-<status>` answers that error (400-599 only); `contextlen` answers OpenAI's 400
`context_length_exceeded`, `contentfilter` Azure's 400 `content_filter` (both win over
`error-<status>`); `retryafter-<s>` sets `retry-after: <s>` on a 429 or 503 (a 429 has
`retry-after: 1` without it); `streamerror` cuts a stream off after a few events, `nodone` ends a
stream cleanly but without `[DONE]`, and `notsse` answers a stream request with a plain JSON body.

`flaky-<n>` makes the failure temporary: the first n requests for that model name (counted per
server, ignoring case, until `FakeServer.reset`) misbehave as the other markers say, or answer 503
if none does; later ones succeed, keeping only `slow-`, `firstbyte-`, `chunkdelay-` and
`tokens-<p>-<c>`, which fixes the usage exactly.

Matching ignores case, and a marker must start at a word boundary: e.g. "streamerror" is not read
as "error-...", nor "hangstream" as "hang".
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass

from fakes.fake_validation import RequestError

_NUMBER_MARKER = re.compile(r"(?<![a-z0-9])(slow|chunkdelay|error|retryafter|flaky|firstbyte)-(\d+)(?!\d)")
_TOKENS_MARKER = re.compile(r"(?<![a-z0-9])tokens-(\d+)-(\d+)(?!\d)")
_WORDS = ("hang", "hangstream", "streamerror", "nodone", "notsse", "contextlen", "contentfilter")
_WORD_MARKER = re.compile(r"(?<![a-z0-9])(" + "|".join(_WORDS) + r")(?![a-z0-9])")
CONTEXT_LENGTH = "context_length_exceeded"  # `Behaviour.error_kind` values, named after the error code
CONTENT_FILTER = "content_filter"
MAX_CONTEXT_TOKENS = 8192


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
    error_kind: str | None = None  # CONTEXT_LENGTH or CONTENT_FILTER, with error_status 400
    retry_after: int | None = None
    flaky: tuple[str, int] | None = None  # (lower-cased model name, failures); see `flaky_phase`
    first_byte_ms: int = 0
    hang_stream: bool = False

    @property
    def misbehaves(self) -> bool:
        """Whether it asks for more than timing and token counts (what `flaky-<n>` turns off)."""
        failures = self.hang or self.hang_stream or self.stream_error or self.no_done or self.not_sse
        return failures or self.error_status is not None


BehaviourLookup = Callable[[str], Behaviour]


def parse_behaviour(model: str) -> Behaviour:
    name = model.lower()
    numbers: dict[str, int] = {key: int(value) for key, value in _NUMBER_MARKER.findall(name)}
    words = set(_WORD_MARKER.findall(name))
    tokens = _TOKENS_MARKER.search(name)
    status = numbers.get("error")
    # Only real error statuses: "error-200" would be a confusing way to ask for success.
    error_status = status if status is not None and 400 <= status <= 599 else None
    kind = CONTEXT_LENGTH if "contextlen" in words else CONTENT_FILTER if "contentfilter" in words else None
    flaky = numbers.get("flaky")
    return Behaviour(
        slow_ms=numbers.get("slow", 0),
        chunk_delay_ms=numbers.get("chunkdelay", 0),
        error_status=400 if kind else error_status,
        hang="hang" in words,
        tokens=(int(tokens.group(1)), int(tokens.group(2))) if tokens else None,
        stream_error="streamerror" in words,
        no_done="nodone" in words,
        not_sse="notsse" in words,
        error_kind=kind,
        retry_after=numbers.get("retryafter"),
        flaky=(name, flaky) if flaky is not None else None,
        first_byte_ms=numbers.get("firstbyte", 0),
        hang_stream="hangstream" in words,
    )


def flaky_phase(behaviour: Behaviour, failing: bool) -> Behaviour:
    """What a `flaky-<n>` model does for one request: fail as asked (503 by default), or not at all."""
    if not failing:
        return dataclasses.replace(
            behaviour,
            flaky=None,
            error_status=None,
            error_kind=None,
            hang=False,
            hang_stream=False,
            stream_error=False,
            no_done=False,
            not_sse=False,
        )
    if behaviour.misbehaves:
        return dataclasses.replace(behaviour, flaky=None)
    return dataclasses.replace(behaviour, flaky=None, error_status=503)


def retry_after_headers(status: int, retry_after: int | None) -> tuple[tuple[str, str], ...]:
    """`retry-after` on a marker's 429 (1 s unless `retryafter-<s>` says otherwise) or 503 (if asked)."""
    if status == 429:
        return (("retry-after", str(1 if retry_after is None else retry_after)),)
    if status == 503 and retry_after is not None:
        return (("retry-after", str(retry_after)),)
    return ()


def _content_filter_error() -> RequestError:
    """Azure OpenAI's answer to a prompt its content filter blocks (which has a null `type`)."""
    verdicts = {category: {"filtered": False, "severity": "safe"} for category in ("hate", "self_harm", "sexual")}
    verdicts["violence"] = {"filtered": True, "severity": "medium"}
    message = (
        "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. "
        "Please modify your prompt and retry. To learn more about our content filtering policies please read "
        "our documentation: https://go.microsoft.com/fwlink/?linkid=2198766"
    )
    inner = {"code": "ResponsibleAIPolicyViolation", "content_filter_result": verdicts}
    extra = {"type": None, "status": 400, "innererror": inner}
    return RequestError(400, message, param="prompt", code=CONTENT_FILTER, extra=extra)


def marker_error(behaviour: Behaviour) -> RequestError:
    """The OpenAI-shaped error chosen by the markers; `behaviour.error_status` must be set."""
    status = behaviour.error_status or 500
    if behaviour.error_kind == CONTEXT_LENGTH:
        message = (
            f"This model's maximum context length is {MAX_CONTEXT_TOKENS} tokens. However, your messages "
            f"resulted in {MAX_CONTEXT_TOKENS + 1} tokens. Please reduce the length of the messages."
        )
        return RequestError(400, message, param="messages", code=CONTEXT_LENGTH, error_type="invalid_request_error")
    if behaviour.error_kind == CONTENT_FILTER:
        return _content_filter_error()
    headers = retry_after_headers(status, behaviour.retry_after)
    if status == 429:
        return RequestError(429, "fake upstream error 429", code="rate_limit_exceeded", headers=headers)
    if status == 404:  # OpenAI's 404 for a model it does not serve
        return RequestError(404, "The model does not exist or you do not have access to it.", code="model_not_found")
    return RequestError(status, f"fake upstream error {status}", headers=headers)
