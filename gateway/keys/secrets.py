"""Key secrets. A key carries about 238 random bits, so one SHA-256 is enough to store it safely."""

from __future__ import annotations

import hashlib
import secrets

SECRET_PREFIX = "sk-gw-"
VISIBLE_CHARS = 12
_SECRET_BODY_LEN = 40
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_ALPHABET_SET = frozenset(_ALPHABET)


def new_secret() -> str:
    return SECRET_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(_SECRET_BODY_LEN))


def looks_like_key(secret: str) -> bool:
    """Shaped like a key this gateway issues (checked before any lookup)."""
    body = secret[len(SECRET_PREFIX) :]
    return secret.startswith(SECRET_PREFIX) and len(body) == _SECRET_BODY_LEN and _ALPHABET_SET.issuperset(body)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def visible_prefix(secret: str) -> str:
    return secret[:VISIBLE_CHARS]
