"""What one request used, in every unit a model can be priced by."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts follow OpenAI: ``prompt_tokens`` includes the cached and cache-write tokens.

    The other units belong to the endpoints that bill by them: ``images`` generated, ``audio_ms``
    of audio transcribed or translated, ``characters`` of text spoken.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    images: int = 0
    audio_ms: int = 0
    characters: int = 0

    @classmethod
    def from_openai(cls, usage: Any) -> Usage | None:
        """Read an OpenAI ``usage`` object, chat style (prompt/completion tokens) or Responses-API
        style (input/output tokens); None when absent or malformed."""
        if not isinstance(usage, dict):
            return None
        if "input_tokens" in usage and "prompt_tokens" not in usage:
            prompt, completion, details = "input_tokens", "output_tokens", "input_tokens_details"
        else:
            prompt, completion, details = "prompt_tokens", "completion_tokens", "prompt_tokens_details"
        cached = usage.get(details)
        return cls(
            prompt_tokens=count(usage.get(prompt)),
            completion_tokens=count(usage.get(completion)),
            cached_tokens=count(cached.get("cached_tokens") if isinstance(cached, dict) else 0),
        )


def count(value: Any) -> int:
    """A usage figure as the ledger takes it: a non-negative integer, anything else counts as 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
