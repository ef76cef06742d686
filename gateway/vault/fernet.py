"""Encrypt and decrypt backend secrets with ``cryptography``'s MultiFernet.

``GATEWAY_ENCRYPTION_KEYS`` holds one or more Fernet keys, comma-separated: the first encrypts,
every one decrypts, so a new key goes first and the old one stays until
``gateway credentials re-encrypt`` has moved every secret onto the new one. Without keys the
gateway still serves ``env:`` and file credentials; storing a secret is refused with a clear error.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from gateway.errors import ConfigError, GatewayError


class VaultError(GatewayError):
    """A secret cannot be stored or read (no key configured, or none of the keys opens it)."""

    code = "encryption_unavailable"


class Vault:
    def __init__(self, keys: str) -> None:
        parts = [part.strip() for part in keys.split(",") if part.strip()]
        try:
            self._fernet = MultiFernet([Fernet(part.encode()) for part in parts]) if parts else None
        except (ValueError, TypeError):
            # Never echo the value: it is the key to every stored secret.
            raise ConfigError(
                "GATEWAY_ENCRYPTION_KEYS: expected comma-separated Fernet keys (32 url-safe base64 bytes "
                "each, as `gateway credentials new-key` prints); value not shown"
            ) from None
        self.key_count = len(parts)

    @property
    def enabled(self) -> bool:
        return self._fernet is not None

    def encrypt(self, secret: str) -> str:
        return self._require().encrypt(secret.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._require().decrypt(token.encode("ascii")).decode()
        except InvalidToken:
            raise VaultError(
                "A stored secret cannot be decrypted with any of GATEWAY_ENCRYPTION_KEYS (was its key removed?)."
            ) from None

    def rotate(self, token: str) -> str:
        """The same secret under the first key (``gateway credentials re-encrypt``)."""
        try:
            return self._require().rotate(token.encode("ascii")).decode("ascii")
        except InvalidToken:
            raise VaultError("A stored secret cannot be decrypted with any of GATEWAY_ENCRYPTION_KEYS.") from None

    def _require(self) -> MultiFernet:
        if self._fernet is None:
            raise VaultError(
                "Storing a backend secret needs GATEWAY_ENCRYPTION_KEYS (a Fernet key: `gateway credentials "
                "new-key` prints one); or give the secret as an env: reference instead.",
                param="secret",
            )
        return self._fernet


def new_key() -> str:
    return Fernet.generate_key().decode("ascii")
