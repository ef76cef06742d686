"""Parse and check request bodies. Only what the gateway relies on is checked; every other field
passes through untouched for the backend to judge."""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.errors import InvalidRequest
from gateway.wire.endpoints import CHAT, SPEECH, Endpoint

# Top-level fields the gateway itself reads, with the JSON type each must have when present (the
# OpenAPI schema of the /v1 routes is built from this, so the two cannot drift apart).
TYPED_FIELDS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "stream": (bool, "a boolean"),
    "stream_options": (dict, "an object"),
    "n": (int, "an integer"),
    "max_tokens": (int, "an integer"),
    "max_completion_tokens": (int, "an integer"),
    "temperature": ((int, float), "a number"),
    "top_p": ((int, float), "a number"),
    "user": (str, "a string"),
    "tools": (list, "an array"),
    "voice": ((str, dict), "a string or an object"),
    "prompt": ((str, list), "a string or an array"),
}
_decoder = msgspec.json.Decoder()


def parse_body(raw: bytes, endpoint: Endpoint) -> dict[str, Any]:
    """Decode a JSON object and check the fields the gateway itself depends on."""
    if not raw.strip():
        raise InvalidRequest("The request body is empty; expected a JSON object.")
    try:
        payload = _decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}.") from None
    except RecursionError:
        raise InvalidRequest("The request body is nested too deeply.") from None
    if not isinstance(payload, dict):
        raise InvalidRequest(f"The request body must be a JSON object, not {_json_type(payload)}.")
    model = payload.get("model")
    if model is None and endpoint.default_model:
        model = payload["model"] = endpoint.default_model
    if model is None:
        raise InvalidRequest("Missing required parameter: 'model'.", param="model", code="missing_required_parameter")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("'model' must be a non-empty string.", param="model", code="invalid_type")
    for name in endpoint.required:
        if payload.get(name) is None:
            raise InvalidRequest(
                f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter"
            )
    _check_types(payload)
    if endpoint is CHAT:
        _check_messages(payload["messages"])
    if endpoint is SPEECH and not isinstance(payload["input"], str):
        raise InvalidRequest(
            f"Invalid type for 'input': expected a string, but got {_json_type(payload['input'])}.",
            param="input",
            code="invalid_type",
        )
    if payload.get("stream") and not endpoint.streams:
        raise InvalidRequest(f"'stream' is not supported on {endpoint.path}.", param="stream")
    return payload


def _check_types(payload: dict[str, Any]) -> None:
    for name, (kind, described) in TYPED_FIELDS.items():
        value = payload.get(name)
        if value is None:
            continue
        wrong_bool = isinstance(value, bool) and kind is not bool
        if wrong_bool or not isinstance(value, kind):
            raise InvalidRequest(
                f"Invalid type for '{name}': expected {described}, but got {_json_type(value)}.",
                param=name,
                code="invalid_type",
            )


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list):
        raise InvalidRequest(
            f"Invalid type for 'messages': expected an array, but got {_json_type(messages)}.",
            param="messages",
            code="invalid_type",
        )
    if not messages:
        raise InvalidRequest("'messages' must contain at least one message.", param="messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InvalidRequest(
                f"Invalid type for 'messages[{index}]': expected an object, but got {_json_type(message)}.",
                param=f"messages[{index}]",
                code="invalid_type",
            )
        if not isinstance(message.get("role"), str):
            raise InvalidRequest(
                f"Missing required parameter: 'messages[{index}].role'.",
                param=f"messages[{index}].role",
                code="missing_required_parameter",
            )


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
