"""OpenAI embeddings in, Bedrock ``invoke`` out: Amazon Titan (one text per call) and Cohere Embed
(up to 96 texts per call), chosen by the model id."""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.errors import InvalidRequest, UnsupportedEndpoint, UpstreamError
from gateway.wire.usage import Usage, count

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()
COHERE_MAX_TEXTS = 96
_COHERE_INPUT_TYPE = "search_document"  # Cohere requires one; OpenAI clients embed documents by default


def is_cohere(upstream_model: str) -> bool:
    return upstream_model.startswith(("cohere.embed", "us.cohere.embed", "eu.cohere.embed"))


def embeddings_request(payload: dict[str, Any], params: dict[str, Any], upstream_model: str) -> dict[str, Any]:
    merged = {**params, **payload}
    texts = _texts(merged.get("input"))
    if is_cohere(upstream_model):
        if len(texts) > COHERE_MAX_TEXTS:
            raise InvalidRequest(
                f"This model's backend embeds at most {COHERE_MAX_TEXTS} texts per request.", param="input"
            )
        input_type = merged.get("input_type", _COHERE_INPUT_TYPE)
        return {"texts": texts, "input_type": input_type, "embedding_types": ["float"]}
    if len(texts) > 1:
        raise UnsupportedEndpoint(
            "This model's backend (Bedrock Titan embeddings) embeds one text per request: "
            "send 'input' as a single string."
        )
    body: dict[str, Any] = {"inputText": texts[0]}
    dimensions = merged.get("dimensions")
    if isinstance(dimensions, int) and not isinstance(dimensions, bool):
        body["dimensions"] = dimensions
    return body


def _texts(raw: Any) -> list[str]:
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
        raise InvalidRequest("This model's backend takes 'input' as non-empty strings, not tokens.", param="input")
    return texts


def translate_embeddings(body: bytes, model: str = "") -> tuple[bytes, Usage | None]:
    """Titan's ``{"embedding": [...], "inputTextTokenCount": n}`` or Cohere's ``{"embeddings":
    {"float": [[...], ...]}}`` as an OpenAI embeddings list. Cohere reports no token count in the
    body: usage is then None, and the gateway counts the input itself."""
    reply = _decode(body)
    if "embeddings" in reply:
        vectors = reply["embeddings"]
        vectors = vectors.get("float") if isinstance(vectors, dict) else vectors
        usage = None
    else:
        vectors = [reply.get("embedding")]
        usage = Usage(prompt_tokens=count(reply.get("inputTextTokenCount")))
    if not isinstance(vectors, list) or not all(_is_vector(v) for v in vectors):
        raise UpstreamError("The backend returned a response that is not an embedding.")
    data = [{"object": "embedding", "index": i, "embedding": vector} for i, vector in enumerate(vectors)]
    out: dict[str, Any] = {"object": "list", "data": data, "model": model}
    if usage is not None:
        out["usage"] = {"prompt_tokens": usage.prompt_tokens, "total_tokens": usage.prompt_tokens}
    return _encoder.encode(out), usage


def _is_vector(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(x, int | float) and not isinstance(x, bool) for x in value)


def _decode(body: bytes) -> dict[str, Any]:
    try:
        reply = _decoder.decode(body)
    except (msgspec.DecodeError, RecursionError):
        raise UpstreamError("The backend returned a response that is not JSON.") from None
    if not isinstance(reply, dict):
        raise UpstreamError("The backend returned a response that is not a JSON object.")
    return reply
