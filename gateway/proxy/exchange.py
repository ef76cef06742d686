"""One request's account, filled in as it moves along the pipeline and recorded exactly once."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from gateway.catalog.registry import ModelRoute
from gateway.keys.model import KeyInfo
from gateway.wire.usage import Usage

if TYPE_CHECKING:
    from gateway.quotas.service import Admission

__all__ = ["Exchange", "Usage"]


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
    admission: Admission | None = None
    """The request's quota reservation, settled when the exchange is recorded."""

    def mark_first_byte(self) -> None:
        if self.first_byte is None:
            self.first_byte = time.perf_counter()

    def cost_nano_usd(self) -> int:
        if self.route is None or self.usage is None:
            return 0
        return self.route.prices_at(self.started_at).cost_nano_usd(self.usage)

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
            "cache_write_tokens": usage.cache_write_tokens,
            "images": usage.images,
            "audio_ms": usage.audio_ms,
            "characters": usage.characters,
            "cost_nano_usd": self.cost_nano_usd(),
            "status_code": self.status,
            "error_type": self.error_type,
            "latency_ms": round(elapsed * 1000),
            "ttft_ms": round((self.first_byte - self.started) * 1000) if self.first_byte else None,
            "streamed": self.streamed,
            "unpriced": route.unpriced if route else False,
            "started_at": self.started_at,
            "finished_at": self.started_at + timedelta(seconds=elapsed),
        }


def _storable(text: str) -> str:
    """Client-chosen text as every database takes it (PostgreSQL refuses NUL characters)."""
    return text.replace("\x00", "\ufffd")[:200]
