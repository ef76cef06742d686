"""Backend credentials: resolved from the environment or the config file, held only in memory.

Nothing here is written to SQL (which keeps only the reference, ``env:VAR``), returned by any
API, or logged. A credential that is missing is reported by name when a request needs it.
"""

from __future__ import annotations

import logging
import os

from gateway.catalog.config import BackendConfig
from gateway.errors import ConfigError

log = logging.getLogger(__name__)
# Where each backend kind takes its key; the rest use "Authorization: Bearer".
_KEY_HEADERS = {"anthropic": "x-api-key", "azure": "api-key", "gemini": "x-goog-api-key"}


def resolve_api_key(spec: BackendConfig) -> str | None:
    if spec.api_key_env:
        key = (os.environ.get(spec.api_key_env) or "").strip()  # secrets mounted from files end in \n
        if not key:
            # Not fatal: the other backends still serve. Requests to this one will fail with 502.
            log.warning("backend %r: environment variable %s is not set", spec.name, spec.api_key_env)
    else:
        key = (spec.api_key or "").strip()
    if key and not (key.isascii() and key.isprintable()):
        where = spec.api_key_env or f"backends.{spec.name}.api_key"
        raise ConfigError(f"backend {spec.name!r}: the credential in {where} has characters a header cannot carry")
    return key or None


def backend_headers(spec: BackendConfig) -> dict[str, str]:
    """Headers that authenticate us to the backend; empty when it needs none (local servers)."""
    key = resolve_api_key(spec)
    if not key:
        return {}
    header = _KEY_HEADERS.get(spec.kind)
    return {header: key} if header else {"authorization": f"Bearer {key}"}
