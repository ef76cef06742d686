"""Building blocks shared by the fake upstream's OpenAI payloads (see `fake_upstream.py`).

Given the decoded request body and a sequence number, the same request always yields the same
payload apart from the `created` timestamp. No I/O in the payload modules: `fake_upstream.py`
does the HTTP. Field names follow OpenAI's published OpenAPI description
(CreateChatCompletionResponse, CreateChatCompletionStreamResponse, CreateCompletionResponse,
CreateEmbeddingResponse, Model, Error). One module per endpoint builds its payloads:
`fake_chat`, `fake_completions`, `fake_embeddings` and `fake_models`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fakes.fake_markers import Behaviour
from fakes.fake_validation import Json

REPLY_WORDS: tuple[str, ...] = ("This", "is", "a", "fake", "reply", "from", "the", "upstream.")
SYSTEM_FINGERPRINT = "fp_fake_upstream"
TOOL_CALL_TOKENS = 1


@dataclass(slots=True)
class Answer:
    """What an endpoint returns: a JSON payload or a stream of chunks, plus the markers that shape
    how it is delivered."""

    behaviour: Behaviour
    payload: Any = None
    chunks: Iterator[Json] | None = None


@dataclass(frozen=True, slots=True)
class Generation:
    """The fake model's answer, independent of the wire format it is sent in."""

    words: tuple[str, ...]
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    tool_name: str | None = None


def reply_words(count: int) -> tuple[str, ...]:
    return tuple(REPLY_WORDS[i % len(REPLY_WORDS)] for i in range(count))


def generate(behaviour: Behaviour, prompt_tokens: int, limit: int | None, tool: str | None = None) -> Generation:
    if behaviour.tokens is not None:  # the marker fixes usage exactly, whatever max_tokens says
        prompt_tokens, count = behaviour.tokens
        finish = "stop"
    else:
        count = len(REPLY_WORDS)
        finish = "stop"
        if limit is not None and limit < count:
            count, finish = limit, "length"
    if tool is not None:
        completion = count if behaviour.tokens is not None else TOOL_CALL_TOKENS
        return Generation((), "tool_calls", prompt_tokens, completion, tool)
    return Generation(reply_words(count), finish, prompt_tokens, count)


def usage(prompt_tokens: int, completion_tokens: int) -> Json:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def include_usage(body: Json) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


@dataclass(frozen=True, slots=True)
class Envelope:
    """The fields shared by a completion object and every chunk of its stream."""

    ident: str
    created: int
    model: str
    gen: Generation

    def wrap(self, kind: str, choices: list[Json], **extra: Any) -> Json:
        return {
            "id": self.ident,
            "object": kind,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": choices,
            **extra,
        }

    def usage(self) -> Json:
        return usage(self.gen.prompt_tokens, self.gen.completion_tokens)


def word_pieces(words: tuple[str, ...]) -> Iterator[str]:
    # Leading spaces on all but the first piece, so concatenated deltas equal the full content.
    for i, word in enumerate(words):
        yield word if i == 0 else " " + word
