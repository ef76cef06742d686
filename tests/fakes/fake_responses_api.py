"""`POST /v1/responses` payloads of the fake upstream: a `response` object or its stream of events.

Field names follow OpenAI's published OpenAPI description (Response, ResponseCreatedEvent,
ResponseOutputItemAddedEvent, ResponseContentPartAddedEvent, ResponseTextDeltaEvent,
ResponseTextDoneEvent, ResponseContentPartDoneEvent, ResponseOutputItemDoneEvent,
ResponseCompletedEvent). Words are counted as tokens, as for chat: the input tokens are the words
of `instructions` plus the text of `input` (at least 1), and the reply is the chat reply,
truncated to `max_output_tokens` words; a `tokens-<p>-<c>` marker fixes both exactly.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from fakes.fake_markers import BehaviourLookup
from fakes.fake_payloads import Answer, Generation, generate, word_pieces
from fakes.fake_validation import (
    Json,
    RequestError,
    count_words,
    positive_int,
    require_model,
    require_object,
)


def responses(body: Any, seq: int, lookup: BehaviourLookup) -> Answer:
    body = require_object(body)
    model = require_model(body)
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise RequestError(400, "'instructions' must be a string.", param="instructions")
    input_tokens = max(1, count_words(instructions or "") + input_words(body.get("input")))
    behaviour = lookup(model)
    gen = generate(behaviour, input_tokens, positive_int(body, "max_output_tokens"))
    env = ResponseEnvelope(seq, int(time.time()), model, gen, body)
    if body.get("stream") is True:
        return Answer(behaviour, chunks=response_events(env))
    return Answer(behaviour, payload=env.response("completed", [env.message("completed")], with_usage=True))


def _content_words(content: Any) -> int:
    if isinstance(content, str):
        return count_words(content)
    if isinstance(content, list):  # content parts: only the text parts carry words
        return sum(
            count_words(part["text"])
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return 0


def input_words(value: Any) -> int:
    """Words of the `input`: a string, or a list of input items with `role` and `content`."""
    if isinstance(value, str):
        return count_words(value)
    if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        return sum(_content_words(item.get("content")) for item in value)
    raise RequestError(400, "'input' must be a string or a non-empty array of input items.", param="input")


class ResponseEnvelope:
    """The fields shared by a `response` object and the events of its stream."""

    __slots__ = ("body", "created_at", "gen", "ident", "item_id", "model")

    def __init__(self, seq: int, created_at: int, model: str, gen: Generation, body: Json) -> None:
        self.ident, self.item_id = f"resp_fake_{seq}", f"msg_fake_{seq}"
        self.created_at, self.model, self.gen, self.body = created_at, model, gen, body

    @property
    def text(self) -> str:
        return " ".join(self.gen.words)

    def part(self, text: str) -> Json:
        return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}

    def message(self, status: str, content: list[Json] | None = None) -> Json:
        return {
            "type": "message",
            "id": self.item_id,
            "status": status,
            "role": "assistant",
            "content": [self.part(self.text)] if content is None else content,
        }

    def usage(self) -> Json:
        gen = self.gen
        return {
            "input_tokens": gen.prompt_tokens,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": gen.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": gen.prompt_tokens + gen.completion_tokens,
        }

    def response(self, status: str, output: list[Json], *, with_usage: bool) -> Json:
        body = self.body
        metadata = body.get("metadata")
        return {
            "id": self.ident,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "model": self.model,
            "output": output,
            "parallel_tool_calls": True,
            "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None},
            "store": False,
            "temperature": 1.0,
            "text": {"format": {"type": "text"}},
            "tool_choice": "auto",
            "tools": [],
            "top_p": 1.0,
            "truncation": "disabled",
            "metadata": metadata if isinstance(metadata, dict) else {},
            **({"usage": self.usage()} if with_usage else {}),  # the spec has no null usage
        }


def response_events(env: ResponseEnvelope) -> Iterator[Json]:
    """The stream's events, each with its `type` and an increasing `sequence_number` from 0."""
    ids = {"item_id": env.item_id, "output_index": 0, "content_index": 0}
    events: Iterator[Json] = _events(env, ids)
    for number, event in enumerate(events):
        event["sequence_number"] = number
        yield event


def _events(env: ResponseEnvelope, ids: Json) -> Iterator[Json]:
    text = env.text
    yield {"type": "response.created", "response": env.response("in_progress", [], with_usage=False)}
    yield {"type": "response.output_item.added", "output_index": 0, "item": env.message("in_progress", [])}
    yield {"type": "response.content_part.added", **ids, "part": env.part("")}
    for piece in word_pieces(env.gen.words):
        yield {"type": "response.output_text.delta", **ids, "delta": piece, "logprobs": []}
    yield {"type": "response.output_text.done", **ids, "text": text, "logprobs": []}
    yield {"type": "response.content_part.done", **ids, "part": env.part(text)}
    yield {"type": "response.output_item.done", "output_index": 0, "item": env.message("completed")}
    final = env.response("completed", [env.message("completed")], with_usage=True)
    yield {"type": "response.completed", "response": final}
