"""Backend credentials: resolved from the environment or the config file, held only in memory.

Nothing here is written to SQL (which keeps only the reference, ``env:VAR``), returned by any
API, or logged. A credential that is missing is reported by name when a request needs it.
"""

from __future__ import annotations

import logging
import os

from gateway.catalog.config import BackendConfig

log = logging.getLogger(__name__)


def resolve_api_key(spec: BackendConfig) -> str | None:
    if spec.api_key_env:
        key = os.environ.get(spec.api_key_env)
        if not key:
            # Not fatal: the other backends still serve. Requests to this one will fail with 502.
            log.warning("backend %r: environment variable %s is not set", spec.name, spec.api_key_env)
        return key or None
    return spec.api_key


def backend_headers(spec: BackendConfig) -> dict[str, str]:
    """Headers that authenticate us to the backend; empty when it needs none (local servers)."""
    key = resolve_api_key(spec)
    return {"authorization": f"Bearer {key}"} if key else {}
