"""The client-facing wire schema of a request. The pipeline works in OpenAI's chat schema; an
ingress turns what the client sent into that, and the answer back into what the client speaks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from gateway.catalog.registry import ModelRoute
from gateway.providers.base import Adapter, StreamTap
from gateway.proxy import model_name
from gateway.proxy.body import parse_body
from gateway.proxy.model_name import ModelRenamer, rename_body
from gateway.wire.endpoints import MESSAGES, RESPONSES, Endpoint
from gateway.wire.usage import Usage


class Ingress(Protocol):
    @property
    def native_kind(self) -> str | None:
        """The backend kind that speaks this client's schema: requests for it pass through untranslated."""
        ...

    def decode(self, raw: bytes, endpoint: Endpoint) -> dict[str, Any]:
        """The request in the client's own schema, checked as far as routing needs; raises InvalidRequest."""
        ...

    def translate(self, body: dict[str, Any]) -> dict[str, Any]:
        """The decoded request as an OpenAI payload; raises InvalidRequest."""
        ...

    def native_adapter(self, headers: Mapping[str, str]) -> Adapter:
        """The adapter for a backend of ``native_kind``, given the client's headers."""
        ...

    def respond(self, body: bytes, payload: dict[str, Any], route: ModelRoute) -> bytes:
        """An OpenAI response body, as the client expects it, naming the model the client asked for."""
        ...

    def stream(self, tap: StreamTap, payload: dict[str, Any], route: ModelRoute, endpoint: Endpoint) -> StreamTap:
        """Wrap the backend's tap so what it forwards is in the client's schema, naming the model
        the client asked for."""
        ...


class OpenAIIngress:
    """Clients of the OpenAI API: nothing to translate (the OpenAI adapter is their passthrough)."""

    native_kind: str | None = None

    def decode(self, raw: bytes, endpoint: Endpoint) -> dict[str, Any]:
        return parse_body(raw, endpoint)

    def translate(self, body: dict[str, Any]) -> dict[str, Any]:
        return body

    def native_adapter(self, headers: Mapping[str, str]) -> Adapter:
        raise NotImplementedError("OpenAI clients reach every backend through its own adapter")

    def respond(self, body: bytes, payload: dict[str, Any], route: ModelRoute) -> bytes:
        # Also an Anthropic backend's own message, passed through: its "model" is top-level too.
        return body if route.reveal_upstream_model else rename_body(body, route.model)

    def stream(self, tap: StreamTap, payload: dict[str, Any], route: ModelRoute, endpoint: Endpoint) -> StreamTap:
        if route.reveal_upstream_model or endpoint.relays:  # audio and transcripts name no model
            return tap
        if endpoint.path == RESPONSES.path:
            kind = model_name.RESPONSES
        elif endpoint.name == MESSAGES.name:  # an Anthropic backend's own events, passed through
            kind = model_name.ANTHROPIC
        else:
            kind = model_name.CHUNKS
        return ChainedTap(tap, ModelRenamer(kind, route.model))


OPENAI = OpenAIIngress()


class ClientTap(Protocol):
    """Translates the OpenAI stream the backend tap produces into the client's schema."""

    def feed(self, data: bytes) -> bytes: ...

    def close(self) -> bytes: ...


class ChainedTap:
    """Two taps in a row: the backend's (usage, token counting) then the ingress's (the bytes sent)."""

    def __init__(self, backend: StreamTap, client: ClientTap) -> None:
        self._backend = backend
        self._client = client

    @property
    def usage(self) -> Usage | None:
        return self._backend.usage

    @property
    def finished(self) -> bool:
        return self._backend.finished

    @property
    def forwarded(self) -> bytearray:
        return self._backend.forwarded  # OpenAI-format: what the token counter reads

    def feed(self, data: bytes) -> bytes:
        return self._client.feed(self._backend.feed(data))

    def close(self) -> bytes:
        return self._client.feed(self._backend.close()) + self._client.close()

    def error(self, event: bytes) -> bytes:
        return self._client.feed(self._backend.error(event))
