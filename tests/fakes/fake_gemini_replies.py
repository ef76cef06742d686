"""What the fake Gemini API answers: validation, errors, replies and stream chunks.

Pure functions without I/O, used by `fake_gemini.FakeGemini`. Tokens are counted as
whitespace-separated words, as in the other fakes, so tests can predict usage exactly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fakes.fake_embeddings import MAX_EMBEDDING_DIM, embedding_vector
from fakes.fake_markers import Behaviour
from fakes.fake_validation import Json, RequestError, count_words

REPLY = "This is a fake reply from Gemini."
CALL_ARGS: Json = {"query": "fake"}
THOUGHT_SIGNATURE = "ZmFrZS10aG91Z2h0LXNpZ25hdHVyZQ=="  # what this fake signs its function calls with
CALL_TOKENS = 3  # candidatesTokenCount of a functionCall reply
DEFAULT_EMBEDDING_DIM = 8
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_REQUEST_FIELDS = frozenset(
    ("contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "safetySettings", "cachedContent")
)
_PART_KINDS = frozenset(("text", "inlineData", "fileData", "functionCall", "functionResponse"))
_RETRY_INFO = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"}


def error_body(err: RequestError) -> Json:
    status = STATUS_NAMES.get(err.status, "INTERNAL" if err.status >= 500 else "FAILED_PRECONDITION")
    error: Json = {"code": err.status, "message": err.message, "status": status}
    if err.status == 429:
        error["details"] = [dict(_RETRY_INFO)]
    return {"error": error}


def marker_error(status: int) -> RequestError:
    """The error chosen by an `error-<status>` model marker."""
    return RequestError(status, f"fake gemini error {status}")


# -- validation ------------------------------------------------------------------------------------


def _invalid(message: str) -> RequestError:
    return RequestError(400, message)


def validate(body: Any) -> Json:
    """The body, if it is a minimally valid GenerateContentRequest; raises `RequestError`."""
    if not isinstance(body, dict):
        raise _invalid("Invalid JSON payload received: the body must be an object.")
    unknown = sorted(set(body) - _REQUEST_FIELDS)
    if unknown:
        raise _invalid(f'Invalid JSON payload received. Unknown name "{unknown[0]}": Cannot find field.')
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise _invalid("* GenerateContentRequest.contents: contents is not specified")
    for index, content in enumerate(contents):
        if not isinstance(content, dict) or content.get("role", "user") not in ("user", "model"):
            raise _invalid(f"* GenerateContentRequest.contents[{index}].role: must be 'user' or 'model'")
        _validate_parts(content.get("parts"), f"contents[{index}]")
    if "systemInstruction" in body:
        system = body["systemInstruction"]
        _validate_parts(system.get("parts") if isinstance(system, dict) else None, "systemInstruction")
    config = body.get("generationConfig")
    if config is not None and not isinstance(config, dict):
        raise _invalid("* GenerateContentRequest.generationConfig: must be an object")
    if body.get("tools") is not None and not isinstance(body["tools"], list):
        raise _invalid("* GenerateContentRequest.tools: must be a list")
    return body


def _validate_parts(parts: Any, where: str) -> None:
    if not isinstance(parts, list) or not parts:
        raise _invalid(f"* GenerateContentRequest.{where}.parts: must be a non-empty list")
    for index, part in enumerate(parts):
        kinds = set(part) & _PART_KINDS if isinstance(part, dict) else set()
        if len(kinds) != 1:
            raise _invalid(f"* GenerateContentRequest.{where}.parts[{index}].data: required oneof field 'data'")
        if part.get("text") == "":
            raise _invalid(f"* GenerateContentRequest.{where}.parts[{index}].text: must not be empty")
        signature = part.get("thoughtSignature")
        if signature is not None and signature != THOUGHT_SIGNATURE:
            raise _invalid(f"* GenerateContentRequest.{where}.parts[{index}].thought_signature: invalid signature")


# -- the answer ------------------------------------------------------------------------------------


def _words(parts: Any) -> int:
    if not isinstance(parts, list):
        return 0
    return sum(count_words(p["text"]) for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))


def prompt_tokens(body: Json) -> int:
    system = body.get("systemInstruction")
    words = _words(system.get("parts") if isinstance(system, dict) else None)
    return max(1, words + sum(_words(content.get("parts")) for content in body["contents"]))


def _function_name(body: Json) -> str | None:
    """The function to call, or None when the fake should answer with text."""
    tools = body.get("tools") or []
    declarations = [d for tool in tools if isinstance(tool, dict) for d in tool.get("functionDeclarations") or ()]
    last = body["contents"][-1]
    if not declarations or last.get("role", "user") != "user" or "text" not in last["parts"][-1]:
        return None
    tool_config = body.get("toolConfig")
    config = tool_config.get("functionCallingConfig") if isinstance(tool_config, dict) else None
    config = config if isinstance(config, dict) else {}
    if config.get("mode") == "NONE":
        return None
    allowed = config.get("allowedFunctionNames")
    if isinstance(allowed, list) and allowed:
        return str(allowed[0])
    return str(declarations[0].get("name", "tool")) if isinstance(declarations[0], dict) else "tool"


@dataclass(slots=True)
class Answer:
    """A complete model turn, ready to be sent whole or as stream chunks."""

    response_id: str
    model: str
    text: str
    call: Json | None  # a functionCall part
    finish_reason: str
    prompt: int
    output: int

    def response(self) -> Json:
        parts: list[Json] = [self.call] if self.call is not None else [{"text": self.text}]
        return self._envelope(parts, self.finish_reason, self.output)

    def chunks(self) -> Iterator[Json]:
        """The stream: one chunk per word (or the call), the last with the finish reason."""
        if self.call is not None:
            yield self._envelope([self.call], self.finish_reason, self.output)
            return
        pieces = _word_pieces(self.text) or [""]
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            parts = [{"text": piece}] if piece else []
            yield self._envelope(parts, self.finish_reason if last else None, self.output if last else index + 1)

    def _envelope(self, parts: list[Json], finish_reason: str | None, output: int) -> Json:
        candidate: Json = {"content": {"role": "model", "parts": parts}, "index": 0}
        if finish_reason is not None:
            candidate["finishReason"] = finish_reason
        usage = {
            "promptTokenCount": self.prompt,
            "candidatesTokenCount": output,
            "totalTokenCount": self.prompt + output,
        }
        return {
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": self.model,
            "responseId": self.response_id,
        }


def _word_pieces(text: str) -> list[str]:
    """One piece per word; the pieces concatenate back to `text`."""
    words = text.split(" ")
    return [words[0], *(" " + word for word in words[1:])] if text else []


def _reply_words(count: int) -> str:
    words = REPLY.split()
    return " ".join(words[i % len(words)] for i in range(count))


def answer(body: Json, model: str, seq: int, behaviour: Behaviour) -> Answer:
    """The deterministic answer to a validated request (see the `fake_gemini` docstring)."""
    name = _function_name(body)
    prompt = behaviour.tokens[0] if behaviour.tokens is not None else prompt_tokens(body)
    response_id = f"fake-gemini-{seq}"
    if name is not None:
        # Thinking models sign their function calls; the signature must come back with the call.
        call = {"functionCall": {"name": name, "args": dict(CALL_ARGS)}, "thoughtSignature": THOUGHT_SIGNATURE}
        output = behaviour.tokens[1] if behaviour.tokens is not None else CALL_TOKENS
        return Answer(response_id, model, "", call, "STOP", prompt, output)
    if behaviour.tokens is not None:
        return Answer(response_id, model, _reply_words(behaviour.tokens[1]), None, "STOP", prompt, behaviour.tokens[1])
    config = body.get("generationConfig") or {}
    limit = config.get("maxOutputTokens")
    words = REPLY.split()
    if isinstance(limit, int) and 0 < limit < len(words):
        return Answer(response_id, model, " ".join(words[:limit]), None, "MAX_TOKENS", prompt, limit)
    return Answer(response_id, model, REPLY, None, "STOP", prompt, len(words))


def sse_chunk(data: Json) -> bytes:
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\r\n\r\n"


def embeddings(body: Any, model: str) -> Json:
    """`batchEmbedContents`: one deterministic unit vector per request's text."""
    requests = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(requests, list) or not requests:
        raise _invalid("* BatchEmbedContentsRequest.requests: requests is not specified")
    out = []
    for index, request in enumerate(requests):
        if not isinstance(request, dict) or request.get("model") != f"models/{model}":
            raise _invalid(f"* BatchEmbedContentsRequest.requests[{index}].model: must be models/{model}")
        content = request.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        _validate_parts(parts, f"requests[{index}].content")
        text = " ".join(str(p.get("text") or "") for p in parts or ())
        dims = request.get("outputDimensionality") or DEFAULT_EMBEDDING_DIM
        if not isinstance(dims, int) or not 0 < dims <= MAX_EMBEDDING_DIM:
            raise _invalid(f"* BatchEmbedContentsRequest.requests[{index}].outputDimensionality: out of range")
        out.append({"values": embedding_vector(text, dims)})
    return {"embeddings": out}
