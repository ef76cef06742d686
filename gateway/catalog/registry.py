"""The in-memory catalog the request path reads: no SQL after start-up."""

from __future__ import annotations

import uuid
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from gateway.errors import ModelNotFound
from gateway.wire.usage import Usage


@dataclass(frozen=True, slots=True)
class Prices:
    """Whole micro-USD: per million tokens (``input``, ``cached_input``, ``cache_write_input``,
    ``output``), per ``image``, per ``audio_second``, per million ``characters``. A request's cost
    comes out in nano-USD, rounded up once per request."""

    input: int = 0
    cached_input: int = 0
    output: int = 0
    cache_write_input: int = 0
    image: int = 0
    audio_second: int = 0
    characters: int = 0

    def extras(self) -> dict[str, int]:
        """The prices beyond the three every version has had, where they differ from their defaults
        (cache writes cost the input price unless told otherwise)."""
        extras = {"image": self.image, "audio_second": self.audio_second, "characters": self.characters}
        if self.cache_write_input != self.input:
            extras["cache_write_input"] = self.cache_write_input
        return {name: value for name, value in extras.items() if value}

    def cost_nano_usd(self, usage: Usage) -> int:
        prompt = max(usage.prompt_tokens, 0)
        cached = min(max(usage.cached_tokens, 0), prompt)
        written = min(max(usage.cache_write_tokens, 0), prompt - cached)
        # Everything in pico-USD first: tokens x micro-USD per 1M tokens is pico-USD, an image's
        # micro-USD is 10^6 pico-USD, a millisecond at micro-USD per second is 1000 pico-USD.
        pico = (
            (prompt - cached - written) * self.input
            + cached * self.cached_input
            + written * self.cache_write_input
            + max(usage.completion_tokens, 0) * self.output
            + max(usage.images, 0) * self.image * 1_000_000
            + max(usage.audio_ms, 0) * self.audio_second * 1000
            + max(usage.characters, 0) * self.characters
        )
        return -(-pico // 1000)


class Credentials(Protocol):
    """How requests to one backend prove who the gateway is: a static API key, an Entra ID token
    renewed in the background, an AWS signature. Adapters ask it for every request; it owns any
    state that changes (a renewed token), so the frozen route that holds it never does. Its repr
    must not show a secret."""

    def authorize(self, url: str, headers: dict[str, str], body: bytes | None) -> dict[str, str]:
        """``headers`` plus what authenticates this request; ``body`` is None when it streams."""
        ...


class _Anonymous:
    """A backend that needs no credentials (a local server)."""

    def authorize(self, url: str, headers: dict[str, str], body: bytes | None) -> dict[str, str]:
        return headers

    def __repr__(self) -> str:
        return "Anonymous()"


ANONYMOUS: Credentials = _Anonymous()


@dataclass(frozen=True, slots=True)
class BackendTarget:
    id: uuid.UUID
    name: str
    kind: str
    base_url: str
    timeout_seconds: float | None
    credentials: Credentials = ANONYMOUS
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
    reveal_upstream_model: bool = False
    """Replies name the backend's own model id rather than the public name the client asked for."""
    schedule: tuple[tuple[datetime, Prices], ...] = ()
    """Prices announced ahead, in time order: each in force from its time on."""
    unpriced: bool = False
    """The version has no prices: its cost is unknown (GATEWAY_UNPRICED_MODELS decides)."""
    max_tokens: int | None = None
    """The version's cap on a request's output tokens."""
    context_window: int | None = None

    def prices_at(self, when: datetime) -> Prices:
        """The prices in force at ``when`` (a request is costed at the time it was made)."""
        prices = self.prices
        for start, later in self.schedule:  # empty unless a price change is announced
            if start > when:
                break
            prices = later
        return prices


BUCKETS = 10_000
"""A canary's share is counted in hundredths of a percent of these buckets."""


@dataclass(frozen=True, slots=True)
class Canary:
    route: ModelRoute
    share: int
    """Percent of the model's traffic (1-99)."""

    def takes(self, sticky: str) -> bool:
        """Consistent hashing: a key (or end user) lands in one bucket per canary version, so it
        keeps its side while the share stays, and a larger share only adds buckets."""
        bucket = zlib.crc32(f"{self.route.version_id}:{sticky}".encode()) % BUCKETS
        return bucket < self.share * (BUCKETS // 100)


@dataclass(frozen=True, slots=True)
class Catalog:
    routes: dict[str, ModelRoute]
    """Each served model's active version."""
    canaries: dict[str, Canary] | None = None

    def resolve(self, model: str, sticky: str = "") -> ModelRoute:
        """The version that serves ``model`` for ``sticky`` (the key, or the end user it names)."""
        route = self.routes.get(model)
        if route is None:
            raise ModelNotFound(f"The model '{model}' does not exist.", param="model")
        if self.canaries and (canary := self.canaries.get(model)) is not None and canary.takes(sticky):
            return canary.route
        return route

    def names(self) -> list[str]:
        return sorted(self.routes)
