"""Secrets at rest: backend credentials given through the admin API, encrypted with Fernet
(``cryptography``) under keys from the environment."""

from gateway.vault.fernet import Vault, VaultError

__all__ = ["Vault", "VaultError"]
