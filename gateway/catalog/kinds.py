"""The one list of backend kinds. Configuration validates against it, the adapter registry has one
adapter per entry, and the credential providers read how each kind authenticates from it."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BackendKind:
    name: str
    key_header: str | None = None
    """The header that carries an API key; None: ``Authorization: Bearer <key>``."""
    default_api_version: str | None = None
    """Sent as ``api-version`` when a backend sets none (Azure OpenAI)."""
    entra: bool = False
    """May authenticate with Microsoft Entra ID tokens instead of an API key."""
    signed: bool = False
    """Without an API key, requests are signed (AWS Signature Version 4) and need a region."""
    region_in_host: re.Pattern[str] | None = None
    """Where a signed kind's region can be read from the base URL's host, when none is configured."""


KINDS: dict[str, BackendKind] = {
    kind.name: kind
    for kind in (
        BackendKind("openai"),
        BackendKind("anthropic", key_header="x-api-key"),
        # The GA api-version Azure OpenAI documents; a backend may set another.
        BackendKind("azure", key_header="api-key", default_api_version="2024-10-21", entra=True),
        BackendKind("gemini", key_header="x-goog-api-key"),
        BackendKind(
            "bedrock",
            signed=True,
            region_in_host=re.compile(r"^bedrock-runtime(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$"),
        ),
    )
}
