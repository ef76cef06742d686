"""Which adapter speaks to each backend kind. A new wire schema is one adapter plus one line here."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.providers.anthropic import AnthropicAdapter
from gateway.providers.azure import AzureOpenAIAdapter
from gateway.providers.base import Adapter
from gateway.providers.bedrock import BedrockAdapter
from gateway.providers.gemini import GeminiAdapter
from gateway.providers.openai import OpenAIAdapter


def adapters() -> Mapping[str, Adapter]:
    return {
        "openai": OpenAIAdapter(),
        "anthropic": AnthropicAdapter(),
        "azure": AzureOpenAIAdapter(),
        "gemini": GeminiAdapter(),
        "bedrock": BedrockAdapter(),
    }
