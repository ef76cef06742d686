"""OpenAI wire-format payloads for the fake upstream (see `fake_upstream.py`).

Given the decoded request body and a sequence number, the same request always yields the same
payload apart from the `created` timestamp. No I/O here: `fake_upstream.py` does the HTTP.
Field names follow OpenAI's published OpenAPI description (CreateChatCompletionResponse,
CreateChatCompletionStreamResponse, CreateCompletionResponse, CreateEmbeddingResponse, Model, Error).
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

Json = dict[str, Any]

REPLY_WORDS: tuple[str, ...] = ("This", "is", "a", "fake", "reply", "from", "the", "upstream.")
SYSTEM_FINGERPRINT = "fp_fake_upstream"
MODEL_CREATED = 1_700_000_000  # fixed so model objects are byte-for-byte stable
MODEL_OWNER = "fake-upstream"
TOOL_CALL_ARGUMENTS = "{}"
TOOL_CALL_TOKENS = 1
DEFAULT_EMBEDDING_DIM = 8
MAX_EMBEDDING_DIM = 16_384  # a typo in `dimensions` must not make the fake allocate gigabytes

# A marker must start at a word boundary so that e.g. "streamerror" is not read as "error-...".
_NUMBER_MARKER = re.compile(r"(?<![a-z0-9])(slow|chunkdelay|error)-(\d+)(?!\d)")
_TOKENS_MARKER = re.compile(r"(?<![a-z0-9])tokens-(\d+)-(\d+)(?!\d)")
_HANG_MARKER = re.compile(r"(?<![a-z0-9])hang(?![a-z0-9])")
_STREAM_ERROR_MARKER = re.compile(r"(?<![a-z0-9])streamerror(?![a-z0-9])")


@dataclass(slots=True)
class RequestError(Exception):
    """An error answered to the client as an OpenAI-shaped error body."""

    status: int
    message: str
    param: str | None = None
    code: str | None = None
    error_type: str = ""  # derived from the status when empty
    headers: tuple[tuple[str, str], ...] = ()

    def body(self) -> Json:
        error_type = self.error_type or default_error_type(self.status)
        return {"error": {"message": self.message, "type": error_type, "param": self.param, "code": self.code}}


def default_error_type(status: int) -> str:
    if status == 429:
        return "rate_limit_error"
    return "server_error" if status >= 500 else "invalid_request_error"


def marker_error(status: int) -> RequestError:
    """The error chosen by an `error-<status>` model marker."""
    if status == 429:
        return RequestError(429, "fake upstream error 429", code="rate_limit_exceeded", headers=(("retry-after", "1"),))
    return RequestError(status, f"fake upstream error {status}")


@dataclass(frozen=True, slots=True)
class Behaviour:
    """What the markers inside a model name ask the fake to do."""

    slow_ms: int = 0
    chunk_delay_ms: int = 0
    error_status: int | None = None
    hang: bool = False
    tokens: tuple[int, int] | None = None
    stream_error: bool = False


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
    )


# -- Request validation and deterministic token accounting -------------------------------------------


def require_object(body: Any) -> Json:
    if not isinstance(body, dict):
        raise RequestError(400, "The request body must be a JSON object.")
    return body


def require_model(body: Json) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError(400, "You must provide a model parameter.", param="model")
    return model


def require_messages(body: Json) -> list[Json]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise RequestError(400, "'messages' must be a non-empty array of message objects.", param="messages")
    return messages


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def positive_int(body: Json, name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not _is_int(value) or value < 1:
        raise RequestError(400, f"'{name}' must be an integer greater than or equal to 1.", param=name)
    return int(value)


def max_tokens(body: Json) -> int | None:
    newer = positive_int(body, "max_completion_tokens")
    return newer if newer is not None else positive_int(body, "max_tokens")


def count_words(text: str) -> int:
    return len(text.split())


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


def chat_prompt_tokens(messages: list[Json]) -> int:
    return max(1, sum(_content_words(message.get("content")) for message in messages))


def input_items(value: Any, param: str) -> list[str | list[int]]:
    """Normalise the four accepted shapes of `prompt` / `input` into a list of items."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(item, str) for item in value):
            return list(value)
        if all(_is_int(item) for item in value):
            return [value]
        if all(isinstance(item, list) and item and all(_is_int(t) for t in item) for item in value):
            return list(value)
    raise RequestError(
        400,
        f"'{param}' must be a string, an array of strings, an array of tokens or an array of token arrays.",
        param=param,
    )


def items_tokens(items: list[str | list[int]]) -> int:
    return max(1, sum(count_words(item) if isinstance(item, str) else len(item) for item in items))


# -- Generated completions ---------------------------------------------------------------------------


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


def _tool_name(tool: Any) -> str:
    if isinstance(tool, dict):
        function = tool.get("function")
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            return str(function["name"])
        if isinstance(tool.get("name"), str):
            return str(tool["name"])
    return "tool"


def chosen_tool(body: Json, messages: list[Json]) -> str | None:
    """Which tool to call: only when tools are offered and the user spoke last, as a real model would."""
    tools = body.get("tools")
    if not isinstance(tools, list) or not tools or messages[-1].get("role") != "user":
        return None
    choice = body.get("tool_choice")
    if choice == "none":
        return None
    if isinstance(choice, dict):  # {"type": "function", "function": {"name": ...}} forces that tool
        return _tool_name(choice)
    return _tool_name(tools[0])


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


def _tool_call(call_id: str, name: str, arguments: str = TOOL_CALL_ARGUMENTS) -> Json:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def chat_completion(env: Envelope, call_id: str) -> Json:
    gen = env.gen
    message: Json = {"role": "assistant", "content": " ".join(gen.words), "refusal": None}
    if gen.tool_name is not None:
        message["content"] = None
        message["tool_calls"] = [_tool_call(call_id, gen.tool_name)]
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": gen.finish_reason}
    return env.wrap("chat.completion", [choice], usage=env.usage())


def _word_pieces(words: tuple[str, ...]) -> Iterator[str]:
    # Leading spaces on all but the first piece, so concatenated deltas equal the full content.
    for i, word in enumerate(words):
        yield word if i == 0 else " " + word


def chat_chunks(env: Envelope, call_id: str, with_usage: bool) -> Iterator[Json]:
    nulls: Json = {"usage": None} if with_usage else {}  # OpenAI's explicit null before the usage chunk

    def chunk(delta: Json, finish: str | None = None) -> Json:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return env.wrap("chat.completion.chunk", [choice], **nulls)

    gen = env.gen
    if gen.tool_name is not None:
        call = {"index": 0, **_tool_call(call_id, gen.tool_name, "")}
        yield chunk({"role": "assistant", "content": None, "tool_calls": [call]})
        yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": TOOL_CALL_ARGUMENTS}}]})
    else:
        yield chunk({"role": "assistant", "content": ""})
        for piece in _word_pieces(gen.words):
            yield chunk({"content": piece})
    yield chunk({}, gen.finish_reason)
    if with_usage:
        yield env.wrap("chat.completion.chunk", [], usage=env.usage())


def _text_choice(text: str, finish: str | None) -> Json:
    return {"text": text, "index": 0, "logprobs": None, "finish_reason": finish}


def text_completion(env: Envelope) -> Json:
    choice = _text_choice(" ".join(env.gen.words), env.gen.finish_reason)
    return env.wrap("text_completion", [choice], usage=env.usage())


def text_chunks(env: Envelope, with_usage: bool) -> Iterator[Json]:
    nulls: Json = {"usage": None} if with_usage else {}
    for piece in _word_pieces(env.gen.words):
        yield env.wrap("text_completion", [_text_choice(piece, None)], **nulls)
    yield env.wrap("text_completion", [_text_choice("", env.gen.finish_reason)], **nulls)
    if with_usage:
        yield env.wrap("text_completion", [], usage=env.usage())


# -- Embeddings and models ---------------------------------------------------------------------------


def embedding_vector(item: str | list[int], dims: int) -> list[float]:
    """A unit-length vector derived from a hash of the input, exactly representable as float32."""
    # Distinct prefixes so the text "1,2" and the token list [1, 2] do not collide.
    seed = b"s:" + item.encode() if isinstance(item, str) else b"t:" + ",".join(map(str, item)).encode()
    raw = struct.unpack(f"<{dims}I", hashlib.shake_256(seed).digest(4 * dims))
    values = [v / 2**31 - 1.0 for v in raw]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    # Round-tripping through float32 makes the float and base64 encodings carry identical numbers.
    return list(struct.unpack(f"<{dims}f", struct.pack(f"<{dims}f", *(v / norm for v in values))))


def _embedding_options(body: Json, default_dim: int) -> tuple[int, bool]:
    dims = positive_int(body, "dimensions") or default_dim
    if dims > MAX_EMBEDDING_DIM:
        raise RequestError(400, f"'dimensions' must be at most {MAX_EMBEDDING_DIM}.", param="dimensions")
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise RequestError(400, "'encoding_format' must be 'float' or 'base64'.", param="encoding_format")
    return dims, encoding == "base64"


def embedding_list(body: Json, model: str, behaviour: Behaviour, default_dim: int) -> Json:
    items = input_items(body.get("input"), "input")
    dims, as_base64 = _embedding_options(body, default_dim)
    data: list[Json] = []
    for index, item in enumerate(items):
        vector = embedding_vector(item, dims)
        encoded: Any = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode() if as_base64 else vector
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    tokens = behaviour.tokens[0] if behaviour.tokens is not None else items_tokens(items)
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def model_object(model_id: str) -> Json:
    return {"id": model_id, "object": "model", "created": MODEL_CREATED, "owned_by": MODEL_OWNER}


def model_list(model_ids: tuple[str, ...]) -> Json:
    return {"object": "list", "data": [model_object(model_id) for model_id in model_ids]}


# -- Endpoints: decoded request body in, what to send out --------------------------------------------

BehaviourLookup = Callable[[str], Behaviour]


@dataclass(slots=True)
class Answer:
    """A JSON payload or a stream of chunks, plus the markers that shape how it is delivered."""

    behaviour: Behaviour
    payload: Any = None
    chunks: Iterator[Json] | None = None


def chat(body: Any, seq: int, lookup: BehaviourLookup) -> Answer:
    body = require_object(body)
    model, messages = require_model(body), require_messages(body)
    behaviour = lookup(model)
    tool = chosen_tool(body, messages)
    gen = generate(behaviour, chat_prompt_tokens(messages), max_tokens(body), tool)
    env, call_id = Envelope(f"chatcmpl-fake-{seq}", int(time.time()), model, gen), f"call_fake_{seq}"
    if body.get("stream") is True:
        return Answer(behaviour, chunks=chat_chunks(env, call_id, include_usage(body)))
    return Answer(behaviour, payload=chat_completion(env, call_id))


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


def embeddings(body: Any, seq: int, lookup: BehaviourLookup, default_dim: int = DEFAULT_EMBEDDING_DIM) -> Answer:
    body = require_object(body)
    model = require_model(body)
    behaviour = lookup(model)
    return Answer(behaviour, payload=embedding_list(body, model, behaviour, default_dim))
