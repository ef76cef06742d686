"""The in-memory catalog the request path reads: no SQL after start-up."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import ModelNotFound


@dataclass(frozen=True, slots=True)
class Prices:
    """Micro-USD per million tokens. Costs come out in nano-USD, rounded up per request."""

    input: int = 0
    cached_input: int = 0
    output: int = 0

    def cost_nano_usd(self, prompt_tokens: int, cached_tokens: int, completion_tokens: int) -> int:
        cached = min(max(cached_tokens, 0), max(prompt_tokens, 0))
        # tokens x micro-USD per 1M tokens = pico-USD; divide by 1000 for nano-USD, rounding up.
        pico = (
            (prompt_tokens - cached) * self.input + cached * self.cached_input + max(completion_tokens, 0) * self.output
        )
        return -(-pico // 1000)


@dataclass(frozen=True, slots=True)
class BackendTarget:
    id: uuid.UUID
    name: str
    kind: str
    base_url: str
    timeout_seconds: float | None
    # Carries the credential: kept out of repr so it never reaches a log line.
    headers: dict[str, str] = field(repr=False)
    api_version: str | None = None
    region: str | None = None


@dataclass(frozen=True, slots=True)
class ModelRoute:
    """One model's current version: where to send it and what it costs."""

    model: str
    model_id: uuid.UUID
    version_id: uuid.UUID
    version: int
    backend: BackendTarget
    upstream_model: str
    params: dict[str, Any]
    prices: Prices
    created: int


@dataclass(frozen=True, slots=True)
class Catalog:
    routes: dict[str, ModelRoute]

    def resolve(self, model: str) -> ModelRoute:
        route = self.routes.get(model)
        if route is None:
            raise ModelNotFound(f"The model '{model}' does not exist.", param="model")
        return route

    def names(self) -> list[str]:
        return sorted(self.routes)
