"""`POST /v1/completions` (legacy text completions) payloads of the fake upstream."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from fakes.fake_markers import BehaviourLookup
from fakes.fake_payloads import Answer, Envelope, generate, include_usage, word_pieces
from fakes.fake_validation import Json, input_items, items_tokens, positive_int, require_model, require_object


def completions(body: Any, seq: int, lookup: BehaviourLookup) -> Answer:
    body = require_object(body)
    model, prompt = require_model(body), body.get("prompt")
    behaviour = lookup(model)
    prompt_tokens = 1 if prompt is None else items_tokens(input_items(prompt, "prompt"))
    gen = generate(behaviour, prompt_tokens, positive_int(body, "max_tokens"))
    env = Envelope(f"cmpl-fake-{seq}", int(time.time()), model, gen)
    if body.get("stream") is True:
        return Answer(behaviour, chunks=text_chunks(env, include_usage(body)))
    return Answer(behaviour, payload=text_completion(env))


def _text_choice(text: str, finish: str | None) -> Json:
    return {"text": text, "index": 0, "logprobs": None, "finish_reason": finish}


def text_completion(env: Envelope) -> Json:
    choice = _text_choice(" ".join(env.gen.words), env.gen.finish_reason)
    return env.wrap("text_completion", [choice], usage=env.usage())


def text_chunks(env: Envelope, with_usage: bool) -> Iterator[Json]:
    nulls: Json = {"usage": None} if with_usage else {}
    for piece in word_pieces(env.gen.words):
        yield env.wrap("text_completion", [_text_choice(piece, None)], **nulls)
    yield env.wrap("text_completion", [_text_choice("", env.gen.finish_reason)], **nulls)
    if with_usage:
        yield env.wrap("text_completion", [], usage=env.usage())
