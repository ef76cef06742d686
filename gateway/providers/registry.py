"""One adapter per backend kind of ``catalog.kinds.KINDS``. A new wire schema is one adapter, one
entry in KINDS, and one line here; a kind without its adapter fails at start, not on a request."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from gateway.catalog.kinds import KINDS
from gateway.providers.anthropic import AnthropicAdapter
from gateway.providers.azure import AzureOpenAIAdapter
from gateway.providers.base import Adapter
from gateway.providers.bedrock import BedrockAdapter
from gateway.providers.gemini import GeminiAdapter
from gateway.providers.openai import OpenAIAdapter

_FACTORIES: dict[str, Callable[[], Adapter]] = {
    "openai": OpenAIAdapter,
    "anthropic": AnthropicAdapter,
    "azure": AzureOpenAIAdapter,
    "gemini": GeminiAdapter,
    "bedrock": BedrockAdapter,
}


def adapters() -> Mapping[str, Adapter]:
    missing, unknown = set(KINDS) - set(_FACTORIES), set(_FACTORIES) - set(KINDS)
    if missing or unknown:
        raise RuntimeError(
            f"backend kinds without an adapter: {sorted(missing)}; adapters of no kind: {sorted(unknown)}"
        )
    return {name: _FACTORIES[name]() for name in KINDS}
