"""Translate a Gemini ``GenerateContentResponse`` into an OpenAI ``chat.completion``.

Shared with the stream translation: finish reasons, usage, ids and tool calls. Gemini gives its
function calls no id an OpenAI client could echo back, so they get ``call_<n>`` in reply order;
the request side finds a tool result's function by that id among the earlier assistant turns.
"""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.errors import UpstreamError
from gateway.providers.openai_chat import chat_completion, choice_message
from gateway.providers.openai_chat import count as _count
from gateway.wire.usage import Usage

_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()
_FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}


def finish_reason(reason: Any, called: bool) -> str:
    """OpenAI's finish reason; a turn that ended normally with function calls is "tool_calls"."""
    mapped = _FINISH_REASONS.get(reason, "stop") if isinstance(reason, str) else "stop"
    return "tool_calls" if called and mapped == "stop" else mapped


def usage_of(metadata: Any) -> Usage | None:
    """Gemini counts thinking apart from the candidates; OpenAI bills both as completion tokens."""
    if not isinstance(metadata, dict):
        return None
    completion = _count(metadata.get("candidatesTokenCount")) + _count(metadata.get("thoughtsTokenCount"))
    return Usage(
        prompt_tokens=_count(metadata.get("promptTokenCount")),
        completion_tokens=completion,
        cached_tokens=_count(metadata.get("cachedContentTokenCount")),
    )


def openai_usage(usage: Usage, metadata: Any) -> dict[str, Any]:
    thoughts = _count(metadata.get("thoughtsTokenCount")) if isinstance(metadata, dict) else 0
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": thoughts},
    }


def completion_id(response_id: Any) -> str:
    return f"chatcmpl-{response_id}" if isinstance(response_id, str) and response_id else "chatcmpl-gemini"


def first_candidate(response: dict[str, Any]) -> dict[str, Any]:
    candidates = response.get("candidates")
    if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict):
        return candidates[0]
    return {}


def candidate_parts(candidate: dict[str, Any]) -> list[dict[str, Any]]:
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    if parts is None:
        return []  # e.g. a reply blocked for safety carries no content
    if not isinstance(parts, list) or not all(isinstance(part, dict) for part in parts):
        raise UpstreamError("The backend returned malformed content parts.")
    return parts


def visible_text(part: dict[str, Any]) -> str | None:
    """The part's answer text; None for thought summaries and non-text parts."""
    text = part.get("text")
    return text if isinstance(text, str) and not part.get("thought") else None


def tool_call(part: dict[str, Any], position: int) -> dict[str, Any]:
    """An OpenAI tool call for a ``functionCall`` part. A thinking model's ``thoughtSignature`` rides
    along as ``extra_content.google.thought_signature`` (Google's own OpenAI-compatible convention),
    which clients send back with the call and the request translation returns to Gemini."""
    call = part.get("functionCall")
    call = call if isinstance(call, dict) else {}
    arguments = _encoder.encode(call.get("args") or {}).decode()
    out: dict[str, Any] = {
        "id": f"call_{position}",
        "type": "function",
        "function": {"name": str(call.get("name") or ""), "arguments": arguments},
    }
    signature = part.get("thoughtSignature")
    if isinstance(signature, str) and signature:
        out["extra_content"] = {"google": {"thought_signature": signature}}
    return out


def block_reason(response: dict[str, Any]) -> str | None:
    """Set when the prompt itself was blocked and no candidate came back."""
    feedback = response.get("promptFeedback")
    reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
    return reason if isinstance(reason, str) else None


def translate_response(body: bytes) -> tuple[bytes, Usage | None]:
    response = _decode(body)
    candidate = first_candidate(response)
    message = _choice_message(candidate_parts(candidate))
    reason = "content_filter" if not candidate and block_reason(response) else None
    metadata = response.get("usageMetadata")
    usage = usage_of(metadata)
    completion = chat_completion(
        completion_id(response.get("responseId")),
        str(response.get("modelVersion") or ""),
        message,
        reason or finish_reason(candidate.get("finishReason"), "tool_calls" in message),
        openai_usage(usage, metadata) if usage is not None else None,
    )
    return completion, usage


def _decode(body: bytes) -> dict[str, Any]:
    try:
        response = _decoder.decode(body)
    except (msgspec.DecodeError, RecursionError):
        raise UpstreamError("The backend returned a response that is not JSON.") from None
    if not isinstance(response, dict) or not ("candidates" in response or "promptFeedback" in response):
        raise UpstreamError("The backend returned a response that is not a Gemini GenerateContentResponse.")
    if "candidates" in response and not isinstance(response["candidates"], list):
        raise UpstreamError("The backend returned a response that is not a Gemini GenerateContentResponse.")
    return response


def _choice_message(parts: list[dict[str, Any]]) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in parts:
        text = visible_text(part)
        if text is not None:
            texts.append(text)
        elif "functionCall" in part:
            calls.append(tool_call(part, len(calls)))
        # executableCode, inline images and other parts have no chat.completion counterpart
    return choice_message(texts, calls)


def translate_embeddings(body: bytes) -> tuple[bytes, Usage | None]:
    """A ``batchEmbedContents`` reply as an OpenAI embeddings list (floats: the request's
    ``encoding_format`` is not known here, and the openai SDK accepts floats whatever it asked for)."""
    try:
        response = _decoder.decode(body)
    except (msgspec.DecodeError, RecursionError):
        raise UpstreamError("The backend returned a response that is not JSON.") from None
    embeddings = response.get("embeddings") if isinstance(response, dict) else None
    if not isinstance(embeddings, list):
        raise UpstreamError("The backend returned a response that is not a Gemini embeddings batch.")
    data = []
    for index, embedding in enumerate(embeddings):
        values = embedding.get("values") if isinstance(embedding, dict) else None
        if not isinstance(values, list):
            raise UpstreamError("The backend returned an embedding without values.")
        data.append({"object": "embedding", "index": index, "embedding": values})
    # Gemini reports no token counts for embeddings; the ledger records none rather than a guess.
    reply = {"object": "list", "data": data, "model": "", "usage": {"prompt_tokens": 0, "total_tokens": 0}}
    return _encoder.encode(reply), None
