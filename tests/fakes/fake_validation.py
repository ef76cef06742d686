"""Request validation, OpenAI-shaped errors and deterministic token counting for the fake upstream.

Tokens are counted as whitespace-separated words (or given token ids), so that tests can predict
usage exactly without a tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Json = dict[str, Any]


@dataclass(slots=True)
class RequestError(Exception):
    """An error answered to the client as an OpenAI-shaped error body."""

    status: int
    message: str
    param: str | None = None
    code: str | None = None
    error_type: str = ""  # derived from the status when empty
    headers: tuple[tuple[str, str], ...] = ()
    extra: Json | None = None  # more fields of the error object, overriding the usual ones (Azure's)

    def body(self) -> Json:
        error_type = self.error_type or default_error_type(self.status)
        error = {"message": self.message, "type": error_type, "param": self.param, "code": self.code}
        if self.extra:
            error.update(self.extra)
        return {"error": error}


def default_error_type(status: int) -> str:
    if status == 429:
        return "rate_limit_error"
    return "server_error" if status >= 500 else "invalid_request_error"


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
