"""`GET /v1/models` and `GET /v1/models/{id}` payloads of the fake upstream."""

from __future__ import annotations

from fakes.fake_validation import Json

MODEL_CREATED = 1_700_000_000  # fixed so model objects are byte-for-byte stable
MODEL_OWNER = "fake-upstream"


def model_object(model_id: str) -> Json:
    return {"id": model_id, "object": "model", "created": MODEL_CREATED, "owned_by": MODEL_OWNER}


def model_list(model_ids: tuple[str, ...]) -> Json:
    return {"object": "list", "data": [model_object(model_id) for model_id in model_ids]}
