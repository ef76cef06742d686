"""A backend row as the credential providers take it: the configuration the models file would
have given, with the secret decrypted in memory (it is never written back anywhere)."""

from __future__ import annotations

from typing import Any

from gateway.catalog.config import BackendConfig, EntraConfig
from gateway.db.models import Backend
from gateway.vault import Vault


def backend_config(row: Backend, vault: Vault) -> BackendConfig:
    settings: dict[str, Any] = dict(row.settings or {})
    ref = row.credential_ref or ""
    entra = settings.get("entra")
    return BackendConfig(
        name=row.name,
        kind=row.kind,
        base_url=row.base_url,
        api_key_env=ref.removeprefix("env:") if ref.startswith("env:") else None,
        api_key=vault.decrypt(row.secret_encrypted) if row.secret_encrypted else None,
        timeout_seconds=settings.get("timeout_seconds"),
        api_version=settings.get("api_version"),
        region=settings.get("region"),
        entra=EntraConfig(**entra) if isinstance(entra, dict) else None,
    )


HINT_MIN_LENGTH = 12
"""A secret shorter than this shows none of its characters: four of eight would be half of it."""


def secret_hint(secret: str) -> str:
    """What is kept in the clear to tell secrets apart: the last four characters, never more."""
    return secret[-4:] if len(secret) >= HINT_MIN_LENGTH else ""


def masked_secret(row: Backend) -> str | None:
    """A stored secret as every view shows it (``****abcd``); None when the backend has none."""
    if not row.secret_encrypted:
        return None
    return f"****{row.secret_hint or ''}"
