"""What the fake Bedrock Runtime answers: validation, errors, replies and event-stream frames.

Pure functions without I/O, used by `fake_bedrock.FakeBedrock`. Tokens are counted as
whitespace-separated words, as in the other fakes, so tests can predict usage exactly.

Event-stream framing (`application/vnd.amazon.eventstream`), as AWS specifies it: a 12-byte
prelude (total length, headers length, both big-endian uint32, then the CRC32 of those 8 bytes),
the headers (each: name length as one byte, name, value type 7 for a string, value length as a
big-endian uint16, value), the payload, and the CRC32 of everything before it.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fakes.fake_embeddings import DEFAULT_EMBEDDING_DIM, MAX_EMBEDDING_DIM, embedding_vector
from fakes.fake_markers import Behaviour
from fakes.fake_validation import Json, RequestError, count_words

REPLY = "This is a fake reply from Bedrock."
CALL_INPUT: Json = {"query": "fake"}
CALL_TOKENS = 3  # outputTokens of a toolUse reply
ERROR_NAMES = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}
_REQUEST_FIELDS = frozenset(
    (
        "messages",
        "system",
        "inferenceConfig",
        "toolConfig",
        "guardrailConfig",
        "additionalModelRequestFields",
        "additionalModelResponseFieldPaths",
        "promptVariables",
        "requestMetadata",
        "performanceConfig",
    )
)
_BLOCK_KINDS = frozenset(("text", "image", "document", "video", "toolUse", "toolResult", "guardContent"))
_STRING_HEADER = 7


# -- framing ---------------------------------------------------------------------------------------


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message with string-valued ``headers``."""
    encoded = b""
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        encoded += struct.pack(">B", len(raw_name)) + raw_name
        encoded += struct.pack(">BH", _STRING_HEADER, len(raw_value)) + raw_value
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def event_frame(event_type: str, payload: Json) -> bytes:
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return frame(headers, _encode(payload))


def exception_frame(exception_type: str, message: str) -> bytes:
    headers = {":exception-type": exception_type, ":content-type": "application/json", ":message-type": "exception"}
    return frame(headers, _encode({"message": message}))


def _encode(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


# -- errors and validation -------------------------------------------------------------------------


def error_name(status: int) -> str:
    return ERROR_NAMES.get(status, "InternalServerException" if status >= 500 else "ValidationException")


def error_headers(err: RequestError) -> tuple[tuple[str, str], ...]:
    kind = f"{error_name(err.status)}:http://internal.amazon.com/coral/com.amazon.bedrock/"
    return (("x-amzn-errortype", kind), *err.headers)


def marker_error(status: int) -> RequestError:
    """The error chosen by an `error-<status>` model marker."""
    return RequestError(status, f"fake bedrock error {status}")


def _invalid(message: str) -> RequestError:
    return RequestError(400, message)


def validate(body: Any) -> Json:
    """The body, if it is a minimally valid Converse request; raises `RequestError`."""
    if not isinstance(body, dict):
        raise _invalid("The request body must be a JSON object.")
    unknown = sorted(set(body) - _REQUEST_FIELDS)
    if unknown:
        raise _invalid(f"Malformed input request: extraneous key [{unknown[0]}] is not permitted.")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _invalid("A conversation must start with a user message.")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise _invalid(f"messages.{index}.role: must be 'user' or 'assistant'.")
        _validate_blocks(message.get("content"), f"messages.{index}.content")
        if index and message["role"] == messages[index - 1].get("role"):
            raise _invalid("A conversation must alternate between user and assistant roles.")
    if messages[0]["role"] != "user":
        raise _invalid("A conversation must start with a user message.")
    if "system" in body:
        _validate_blocks(body["system"], "system")
    tool_config = body.get("toolConfig")
    if tool_config is not None and (not isinstance(tool_config, dict) or not tool_config.get("tools")):
        raise _invalid("toolConfig.tools: must be a non-empty list.")
    used = any("toolUse" in b or "toolResult" in b for m in messages for b in m["content"])
    if used and tool_config is None:
        raise _invalid("The toolConfig field must be defined when using toolUse and toolResult content blocks.")
    return body


def _validate_blocks(blocks: Any, where: str) -> None:
    if not isinstance(blocks, list) or not blocks:
        raise _invalid(f"{where}: must be a non-empty list.")
    for index, block in enumerate(blocks):
        kinds = set(block) & _BLOCK_KINDS if isinstance(block, dict) else set()
        if len(kinds) != 1:
            raise _invalid(f"{where}.{index}: exactly one content type must be set.")
        if "text" in block and not (isinstance(block["text"], str) and block["text"].strip()):
            raise _invalid(f"{where}.{index}.text: the text field is blank.")


# -- the answer ------------------------------------------------------------------------------------


def _words(blocks: Any) -> int:
    if not isinstance(blocks, list):
        return 0
    return sum(count_words(b["text"]) for b in blocks if isinstance(b, dict) and isinstance(b.get("text"), str))


def prompt_tokens(body: Json) -> int:
    return max(1, _words(body.get("system")) + sum(_words(m["content"]) for m in body["messages"]))


def _tool_name(body: Json) -> str | None:
    """The tool to call, or None when the fake should answer with text."""
    config = body.get("toolConfig")
    last = body["messages"][-1]
    if not isinstance(config, dict) or last["role"] != "user" or "text" not in last["content"][-1]:
        return None
    choice = config.get("toolChoice")
    named = choice.get("tool") if isinstance(choice, dict) else None
    if isinstance(named, dict) and isinstance(named.get("name"), str):
        return str(named["name"])
    spec = config["tools"][0].get("toolSpec") if isinstance(config["tools"][0], dict) else None
    return str(spec.get("name", "tool")) if isinstance(spec, dict) else "tool"


@dataclass(slots=True)
class Answer:
    """A complete model turn, ready to be sent whole or as stream events."""

    text: str
    call: Json | None  # a toolUse block's value
    stop_reason: str
    prompt: int
    output: int

    def usage(self) -> Json:
        return {"inputTokens": self.prompt, "outputTokens": self.output, "totalTokens": self.prompt + self.output}

    def response(self) -> Json:
        content = [{"toolUse": self.call}] if self.call is not None else [{"text": self.text}]
        return {
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": self.stop_reason,
            "usage": self.usage(),
            "metrics": {"latencyMs": 1},
        }

    def events(self, *, fail: bool = False) -> Iterator[bytes]:
        """The ConverseStream frames: text one word per delta, a tool call's input in two pieces.

        With ``fail``, an ``internalServerException`` follows the first delta and ends the stream.
        """
        yield event_frame("messageStart", {"role": "assistant"})
        if self.call is not None:
            start = {"toolUse": {"toolUseId": self.call["toolUseId"], "name": self.call["name"]}}
            yield event_frame("contentBlockStart", {"contentBlockIndex": 0, "start": start})
            arguments = _encode(self.call["input"]).decode()
            cut = len(arguments) // 2
            pieces: list[Json] = [{"toolUse": {"input": arguments[:cut]}}, {"toolUse": {"input": arguments[cut:]}}]
        else:
            pieces = [{"text": piece} for piece in _word_pieces(self.text)]
        for delta in pieces:
            yield event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": delta})
            if fail:
                yield exception_frame("internalServerException", "fake bedrock stream failure")
                return
        yield event_frame("contentBlockStop", {"contentBlockIndex": 0})
        yield event_frame("messageStop", {"stopReason": self.stop_reason})
        yield event_frame("metadata", {"usage": self.usage(), "metrics": {"latencyMs": 1}})


def _word_pieces(text: str) -> list[str]:
    """One piece per word; the pieces concatenate back to `text`."""
    words = text.split(" ")
    return [words[0], *(" " + word for word in words[1:])] if text else []


def _reply_words(count: int) -> str:
    words = REPLY.split()
    return " ".join(words[i % len(words)] for i in range(count))


def answer(body: Json, seq: int, behaviour: Behaviour) -> Answer:
    """The deterministic answer to a validated request (see the `fake_bedrock` docstring)."""
    name = _tool_name(body)
    prompt = behaviour.tokens[0] if behaviour.tokens is not None else prompt_tokens(body)
    if name is not None:
        call = {"toolUseId": f"tooluse_fake{seq}", "name": name, "input": dict(CALL_INPUT)}
        output = behaviour.tokens[1] if behaviour.tokens is not None else CALL_TOKENS
        return Answer("", call, "tool_use", prompt, output)
    if behaviour.tokens is not None:
        return Answer(_reply_words(behaviour.tokens[1]), None, "end_turn", prompt, behaviour.tokens[1])
    config = body.get("inferenceConfig") or {}
    limit = config.get("maxTokens")
    words = REPLY.split()
    if isinstance(limit, int) and 0 < limit < len(words):
        return Answer(" ".join(words[:limit]), None, "max_tokens", prompt, limit)
    return Answer(REPLY, None, "end_turn", prompt, len(words))


def titan_embedding(body: Any) -> Json:
    """Titan text embeddings v2: one deterministic unit vector for ``inputText``."""
    if not isinstance(body, dict) or not isinstance(body.get("inputText"), str) or not body["inputText"]:
        raise _invalid("Malformed input request: required key [inputText] not found.")
    dims = body.get("dimensions", DEFAULT_EMBEDDING_DIM)
    if not isinstance(dims, int) or not 0 < dims <= MAX_EMBEDDING_DIM:
        raise _invalid("Malformed input request: dimensions is out of range.")
    text = body["inputText"]
    return {"embedding": embedding_vector(text, dims), "inputTextTokenCount": count_words(text)}


def cohere_embeddings(body: Any) -> Json:
    """Cohere Embed v3 with ``embedding_types: ["float"]``: one vector per text, no token count."""
    texts = body.get("texts") if isinstance(body, dict) else None
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
        raise _invalid("Malformed input request: #: required key [texts] not found.")
    if len(texts) > 96:
        raise _invalid("Malformed input request: #/texts: expected maximum item count: 96.")
    if body.get("input_type") not in ("search_document", "search_query", "classification", "clustering"):
        raise _invalid("Malformed input request: #/input_type: is not a valid enum value.")
    vectors = [embedding_vector(text, DEFAULT_EMBEDDING_DIM) for text in texts]
    embeddings: Any = {"float": vectors} if body.get("embedding_types") else vectors
    return {"id": "fake-cohere", "embeddings": embeddings, "texts": texts, "response_type": "embeddings_by_type"}
