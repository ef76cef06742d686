"""Tests for the ``openai_spec`` helper: hand-written payloads shaped like OpenAI's documented examples."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from openai_spec import SPEC_ENV_VAR, OpenAISpecNotFoundError, spec_path, validate

Payload = dict[str, Any]

CHAT_COMPLETION: Payload = {
    "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
    "object": "chat.completion",
    "created": 1741569952,
    "model": "gpt-4.1-2025-04-14",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hello! How can I assist you today?",
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 19,
        "completion_tokens": 10,
        "total_tokens": 29,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
    "service_tier": "default",
    "system_fingerprint": "fp_fc9f1d7035",
}

CHAT_COMPLETION_TOOL_CALLS: Payload = {
    "id": "chatcmpl-abc123",
    "object": "chat.completion",
    "created": 1699896916,
    "model": "gpt-4o-mini",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,
                "refusal": None,
                "tool_calls": [
                    {
                        "id": "call_abc123",
                        "type": "function",
                        "function": {
                            "name": "get_current_weather",
                            "arguments": '{"location": "Boston, MA"}',
                        },
                    }
                ],
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {"prompt_tokens": 82, "completion_tokens": 17, "total_tokens": 99},
}

# A streamed answer with stream_options={"include_usage": true}: every chunk carries "usage": null
# except the last one, which has "choices": [] and the usage.
_CHUNK_BASE: Payload = {
    "id": "chatcmpl-123",
    "object": "chat.completion.chunk",
    "created": 1694268190,
    "model": "gpt-4o-mini",
    "system_fingerprint": "fp_44709d6fcb",
    "service_tier": "default",
}
STREAM_CHUNKS: list[Payload] = [
    {
        **_CHUNK_BASE,
        "choices": [
            {
                "index": 0,
                "delta": {"role": "assistant", "content": "", "refusal": None},
                "logprobs": None,
                "finish_reason": None,
            }
        ],
        "usage": None,
    },
    {
        **_CHUNK_BASE,
        "choices": [{"index": 0, "delta": {"content": "Hello"}, "logprobs": None, "finish_reason": None}],
        "usage": None,
    },
    {
        **_CHUNK_BASE,
        "choices": [
            {
                "index": 0,
                "delta": {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_abc123",
                            "type": "function",
                            "function": {"name": "get_current_weather", "arguments": ""},
                        }
                    ]
                },
                "logprobs": None,
                "finish_reason": None,
            }
        ],
        "usage": None,
    },
    {
        **_CHUNK_BASE,
        "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}],
        "usage": None,
    },
]
STREAM_USAGE_CHUNK: Payload = {
    **_CHUNK_BASE,
    "choices": [],
    "usage": {
        "prompt_tokens": 9,
        "completion_tokens": 12,
        "total_tokens": 21,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    },
}

EMBEDDINGS: Payload = {
    "object": "list",
    "data": [
        {"object": "embedding", "embedding": [0.0023064255, -0.009327292, -0.0028842222], "index": 0},
        {"object": "embedding", "embedding": [-0.0012, 0.0199, 0.5], "index": 1},
    ],
    "model": "text-embedding-3-small",
    "usage": {"prompt_tokens": 8, "total_tokens": 8},
}

MODEL: Payload = {"id": "gpt-4o-mini", "object": "model", "created": 1721172741, "owned_by": "system"}

MODELS: Payload = {
    "object": "list",
    "data": [
        {"id": "model-id-0", "object": "model", "created": 1686935002, "owned_by": "organization-owner"},
        {"id": "model-id-1", "object": "model", "created": 1686935002, "owned_by": "organization-owner"},
        MODEL,
    ],
}

LEGACY_COMPLETION: Payload = {
    "id": "cmpl-uqkvlQyYK7bGYrRHQ0eXlWi7",
    "object": "text_completion",
    "created": 1589478378,
    "model": "gpt-3.5-turbo-instruct",
    "system_fingerprint": "fp_44709d6fcb",
    "choices": [{"text": "\n\nThis is indeed a test", "index": 0, "logprobs": None, "finish_reason": "length"}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
}

ERROR: Payload = {
    "error": {
        "message": "Incorrect API key provided: sk-abc***. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
}

VALID_CASES: list[tuple[str, Payload]] = [
    ("CreateChatCompletionResponse", CHAT_COMPLETION),
    ("CreateChatCompletionResponse", CHAT_COMPLETION_TOOL_CALLS),
    *(("CreateChatCompletionStreamResponse", chunk) for chunk in STREAM_CHUNKS),
    ("CreateChatCompletionStreamResponse", STREAM_USAGE_CHUNK),
    ("CreateEmbeddingResponse", EMBEDDINGS),
    ("ListModelsResponse", MODELS),
    ("Model", MODEL),
    ("CreateCompletionResponse", LEGACY_COMPLETION),
    ("ErrorResponse", ERROR),
]


@pytest.mark.parametrize(
    ("component", "payload"),
    VALID_CASES,
    ids=[f"{component}-{i}" for i, (component, _) in enumerate(VALID_CASES)],
)
def test_accepts_documented_examples(component: str, payload: Payload) -> None:
    validate(component, payload)


def test_accepts_extra_fields() -> None:
    # None of these schemas set additionalProperties: false, so vendor extensions are allowed.
    payload = copy.deepcopy(CHAT_COMPLETION)
    payload["x_gateway"] = {"upstream": "vllm"}
    payload["choices"][0]["message"]["reasoning_content"] = "thinking..."
    payload["choices"][0]["stop_reason"] = None
    validate("CreateChatCompletionResponse", payload)


def test_optional_fields_may_be_absent() -> None:
    # usage, service_tier and system_fingerprint are not required anywhere.
    payload = copy.deepcopy(CHAT_COMPLETION)
    for key in ("usage", "service_tier", "system_fingerprint"):
        del payload[key]
    validate("CreateChatCompletionResponse", payload)
    chunk = copy.deepcopy(STREAM_CHUNKS[1])
    for key in ("usage", "service_tier", "system_fingerprint"):
        del chunk[key]
    del chunk["choices"][0]["logprobs"]
    validate("CreateChatCompletionStreamResponse", chunk)


def _delete(*path: str | int) -> Callable[[Payload], None]:
    def mutate(payload: Payload) -> None:
        target: Any = payload
        for part in path[:-1]:
            target = target[part]
        del target[path[-1]]

    return mutate


def _set(value: object, *path: str | int) -> Callable[[Payload], None]:
    def mutate(payload: Payload) -> None:
        target: Any = payload
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value

    return mutate


def _unchanged(payload: Payload) -> None:
    pass


INVALID_CASES = [
    # component, valid base payload, mutation, expected "<json path>: <message>" fragment
    pytest.param(
        "CreateChatCompletionResponse",
        CHAT_COMPLETION,
        _delete("choices"),
        "$: 'choices' is a required property",
        id="missing-choices",
    ),
    pytest.param(
        "CreateChatCompletionResponse",
        CHAT_COMPLETION,
        _set("1741569952", "created"),
        "$.created: '1741569952' is not of type 'integer'",
        id="created-as-string",
    ),
    pytest.param(
        "CreateChatCompletionResponse",
        CHAT_COMPLETION,
        _set("chat.completion.chunk", "object"),
        "$.object: 'chat.completion.chunk' is not one of ['chat.completion']",
        id="wrong-object",
    ),
    pytest.param(
        "CreateChatCompletionResponse",
        CHAT_COMPLETION,
        _set(None, "choices", 0, "finish_reason"),
        "$.choices[0].finish_reason: None is not of type 'string'",
        id="null-finish-reason",
    ),
    pytest.param(
        "CreateChatCompletionResponse",
        CHAT_COMPLETION,
        _delete("choices", 0, "logprobs"),
        "$.choices[0]: 'logprobs' is a required property",
        id="missing-logprobs",
    ),
    pytest.param(
        "CreateChatCompletionResponse",
        CHAT_COMPLETION,
        _delete("choices", 0, "message", "refusal"),
        "$.choices[0].message: 'refusal' is a required property",
        id="missing-refusal",
    ),
    pytest.param(
        "CreateChatCompletionResponse",
        CHAT_COMPLETION,
        _set(29.5, "usage", "total_tokens"),
        "$.usage.total_tokens: 29.5 is not of type 'integer'",
        id="float-token-count",
    ),
    pytest.param(
        "CreateChatCompletionResponse",
        CHAT_COMPLETION_TOOL_CALLS,
        _delete("choices", 0, "message", "tool_calls", 0, "id"),
        "closest branch: $.choices[0].message.tool_calls[0]: 'id' is a required property",
        id="tool-call-missing-id",
    ),
    pytest.param(
        "CreateChatCompletionStreamResponse",
        STREAM_CHUNKS[1],
        _delete("choices", 0, "delta"),
        "$.choices[0]: 'delta' is a required property",
        id="chunk-missing-delta",
    ),
    pytest.param(
        "CreateChatCompletionStreamResponse",
        STREAM_CHUNKS[1],
        _delete("choices", 0, "finish_reason"),
        "$.choices[0]: 'finish_reason' is a required property",
        id="chunk-missing-finish-reason",
    ),
    pytest.param(
        "CreateChatCompletionStreamResponse",
        STREAM_CHUNKS[1],
        _set("done", "choices", 0, "finish_reason"),
        "$.choices[0].finish_reason: 'done' is not valid under any of the given schemas",
        id="chunk-bad-finish-reason",
    ),
    pytest.param(
        "CreateChatCompletionStreamResponse",
        STREAM_CHUNKS[1],
        _set(["Hel", "lo"], "choices", 0, "delta", "content"),
        "$.choices[0].delta.content: ['Hel', 'lo'] is not valid under any of the given schemas",
        id="chunk-content-list",
    ),
    pytest.param(
        "CreateChatCompletionStreamResponse",
        STREAM_USAGE_CHUNK,
        _set("chat.completion", "object"),
        "$.object: 'chat.completion' is not one of ['chat.completion.chunk']",
        id="usage-chunk-wrong-object",
    ),
    pytest.param(
        "CreateChatCompletionStreamResponse",
        STREAM_USAGE_CHUNK,
        _delete("usage", "prompt_tokens"),
        "closest branch: $.usage: 'prompt_tokens' is a required property",
        id="usage-chunk-missing-prompt-tokens",
    ),
    pytest.param(
        "CreateEmbeddingResponse",
        EMBEDDINGS,
        _delete("usage"),
        "$: 'usage' is a required property",
        id="embeddings-missing-usage",
    ),
    pytest.param(
        "CreateEmbeddingResponse",
        EMBEDDINGS,
        _set("AACAPwAAAEA=", "data", 0, "embedding"),
        "$.data[0].embedding: 'AACAPwAAAEA=' is not of type 'array'",
        id="embedding-base64-string",
    ),
    pytest.param(
        "CreateEmbeddingResponse",
        EMBEDDINGS,
        _set("0.5", "data", 1, "embedding", 2),
        "$.data[1].embedding[2]: '0.5' is not of type 'number'",
        id="embedding-string-number",
    ),
    pytest.param(
        "ListModelsResponse",
        MODELS,
        _set("models", "object"),
        "$.object: 'models' is not one of ['list']",
        id="models-wrong-object",
    ),
    pytest.param(
        "ListModelsResponse",
        MODELS,
        _delete("data", 0, "owned_by"),
        "$.data[0]: 'owned_by' is a required property",
        id="models-missing-owned-by",
    ),
    pytest.param(
        "Model",
        MODEL,
        _delete("created"),
        "$: 'created' is a required property",
        id="model-missing-created",
    ),
    pytest.param(
        "Model",
        MODEL,
        _set("2024-07-17", "created"),
        "$.created: '2024-07-17' is not of type 'integer'",
        id="model-created-as-date",
    ),
    pytest.param(
        "CreateCompletionResponse",
        LEGACY_COMPLETION,
        _set(["a"], "choices", 0, "text"),
        "$.choices[0].text: ['a'] is not of type 'string'",
        id="completion-text-list",
    ),
    pytest.param(
        "CreateCompletionResponse",
        LEGACY_COMPLETION,
        _delete("id"),
        "$: 'id' is a required property",
        id="completion-missing-id",
    ),
    pytest.param(
        "ErrorResponse",
        ERROR,
        _delete("error", "message"),
        "$.error: 'message' is a required property",
        id="error-missing-message",
    ),
    pytest.param(
        "ErrorResponse",
        ERROR,
        _set(401, "error", "code"),
        "$.error.code: 401 is not valid under any of the given schemas",
        id="error-integer-code",
    ),
    pytest.param(
        "ErrorResponse",
        {"detail": "Not Found"},
        _unchanged,
        "$: 'error' is a required property",
        id="error-not-wrapped",
    ),
]


@pytest.mark.parametrize(("component", "base", "mutate", "expected"), INVALID_CASES)
def test_rejects_broken_payloads(
    component: str, base: Payload, mutate: Callable[[Payload], None], expected: str
) -> None:
    payload = copy.deepcopy(base)
    mutate(payload)
    with pytest.raises(AssertionError) as excinfo:
        validate(component, payload)
    message = str(excinfo.value)
    assert f"#/components/schemas/{component}" in message
    assert expected in message, message


def test_error_message_lists_every_error() -> None:
    payload = copy.deepcopy(CHAT_COMPLETION)
    del payload["id"]
    payload["created"] = "yesterday"
    payload["choices"][0]["finish_reason"] = "eos"
    with pytest.raises(AssertionError) as excinfo:
        validate("CreateChatCompletionResponse", payload)
    message = str(excinfo.value)
    assert "(3 errors;" in message
    assert "  - $: 'id' is a required property" in message
    assert "  - $.created: 'yesterday' is not of type 'integer'" in message
    assert "  - $.choices[0].finish_reason: 'eos' is not one of" in message


def test_unknown_component_is_not_an_assertion_error() -> None:
    with pytest.raises(LookupError, match=r"Did you mean: .*CreateChatCompletionResponse"):
        validate("ChatCompletionResponse", {})


def test_missing_spec_fails_loudly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "openai-openapi.yaml"
    monkeypatch.setenv(SPEC_ENV_VAR, str(missing))
    assert spec_path() == missing.resolve()
    # Not an AssertionError: a pytest.raises(AssertionError) must not pass because the spec is absent.
    with pytest.raises(OpenAISpecNotFoundError, match=f"not found at {missing}.*{SPEC_ENV_VAR}"):
        validate("CreateChatCompletionResponse", CHAT_COMPLETION)


def test_env_override_and_openapi_30_dialect(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    spec = tmp_path / "mini.yaml"
    spec.write_text(
        """
openapi: 3.0.3
info: {title: mini, version: "1"}
paths: {}
components:
  schemas:
    Thing:
      type: object
      required: [name, score, parent]
      properties:
        name: {type: string, nullable: true, enum: [a, b]}
        score: {type: number, minimum: 0, exclusiveMinimum: true}
        parent:
          $ref: "#/components/schemas/Parent"
          type: string
    Parent:
      type: object
      required: [id]
      properties:
        id: {type: integer}
      x-vendor: ignored
""",
        encoding="utf-8",
    )
    monkeypatch.setenv(SPEC_ENV_VAR, str(spec))
    assert spec_path() == spec.resolve()
    validate("Thing", {"name": None, "score": 0.5, "parent": {"id": 1}})
    validate("Thing", {"name": "a", "score": 1, "parent": {"id": 1}})
    with pytest.raises(AssertionError, match=r"\$.score: 0 is less than or equal to the minimum of 0"):
        validate("Thing", {"name": "a", "score": 0, "parent": {"id": 1}})
    with pytest.raises(AssertionError, match=r"\$.parent: 'id' is a required property"):
        validate("Thing", {"name": "b", "score": 1, "parent": {}})
    with pytest.raises(AssertionError, match=r"\$.name: 'c' is not valid under any of the given schemas"):
        validate("Thing", {"name": "c", "score": 1, "parent": {"id": 1}})


def test_recursive_ref_and_discriminator() -> None:
    # CompoundFilter uses draft 2019-09 $recursiveRef plus a discriminator; nested errors are reported.
    validate(
        "CompoundFilter",
        {
            "type": "and",
            "filters": [
                {"type": "eq", "key": "region", "value": "eu"},
                {"type": "or", "filters": [{"type": "gte", "key": "year", "value": 2020}]},
            ],
        },
    )
    bad = {"type": "and", "filters": [{"type": "or", "filters": [{"type": "eq", "key": "k", "value": {}}]}]}
    with pytest.raises(AssertionError, match=r"closest branch: \$\.filters\[0\]\.filters\[0\]\.value"):
        validate("CompoundFilter", bad)
