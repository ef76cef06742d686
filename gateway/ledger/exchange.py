"""One request's account, filled in as it moves along the pipeline and recorded exactly once."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.catalog.registry import ModelRoute
from gateway.keys.model import KeyInfo


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

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
            prompt_tokens=_count(usage.get(prompt)),
            completion_tokens=_count(usage.get(completion)),
            cached_tokens=_count(cached.get("cached_tokens") if isinstance(cached, dict) else 0),
        )


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


@dataclass(slots=True)
class Exchange:
    request_id: str
    endpoint: str
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    started: float = field(default_factory=time.perf_counter)
    key: KeyInfo | None = None
    model: str | None = None
    route: ModelRoute | None = None
    usage: Usage | None = None
    status: int = 200
    error_type: str | None = None
    first_byte: float | None = None
    streamed: bool = False

    def mark_first_byte(self) -> None:
        if self.first_byte is None:
            self.first_byte = time.perf_counter()

    def cost_nano_usd(self) -> int:
        if self.route is None or self.usage is None:
            return 0
        u = self.usage
        return self.route.prices.cost_nano_usd(u.prompt_tokens, u.cached_tokens, u.completion_tokens)

    def to_row(self) -> dict[str, Any]:
        elapsed = time.perf_counter() - self.started
        usage = self.usage or Usage()
        route = self.route
        return {
            "request_id": self.request_id,
            "endpoint": self.endpoint,
            "key_id": self.key.id if self.key else None,
            "team_id": self.key.team_id if self.key else None,
            "org_id": self.key.org_id if self.key else None,
            "model": _storable(self.model) if self.model else None,
            "model_version_id": route.version_id if route else None,
            "backend_id": route.backend.id if route else None,
            "prompt_tokens": usage.prompt_tokens,
            "cached_tokens": usage.cached_tokens,
            "completion_tokens": usage.completion_tokens,
            "cost_nano_usd": self.cost_nano_usd(),
            "status_code": self.status,
            "error_type": self.error_type,
            "latency_ms": round(elapsed * 1000),
            "ttft_ms": round((self.first_byte - self.started) * 1000) if self.first_byte else None,
            "streamed": self.streamed,
            "started_at": self.started_at,
            "finished_at": self.started_at + timedelta(seconds=elapsed),
        }


def _storable(text: str) -> str:
    """Client-chosen text as every database takes it (PostgreSQL refuses NUL characters)."""
    return text.replace("\x00", "\ufffd")[:200]
