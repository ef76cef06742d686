"""`POST /v1/embeddings` payloads of the fake upstream: deterministic unit vectors per input."""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from typing import Any

from fakes.fake_markers import Behaviour, BehaviourLookup
from fakes.fake_payloads import Answer
from fakes.fake_validation import (
    Json,
    RequestError,
    input_items,
    items_tokens,
    positive_int,
    require_model,
    require_object,
)

DEFAULT_EMBEDDING_DIM = 8
MAX_EMBEDDING_DIM = 16_384  # a typo in `dimensions` must not make the fake allocate gigabytes


def embeddings(body: Any, seq: int, lookup: BehaviourLookup, default_dim: int = DEFAULT_EMBEDDING_DIM) -> Answer:
    body = require_object(body)
    model = require_model(body)
    behaviour = lookup(model)
    return Answer(behaviour, payload=embedding_list(body, model, behaviour, default_dim))


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
