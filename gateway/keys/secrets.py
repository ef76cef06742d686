"""Key secrets. Keys are 240 random bits, so one SHA-256 is enough to store them safely."""

from __future__ import annotations

import hashlib
import secrets

SECRET_PREFIX = "sk-gw-"
VISIBLE_CHARS = 12
_SECRET_BODY_LEN = 40


def new_secret() -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return SECRET_PREFIX + "".join(secrets.choice(alphabet) for _ in range(_SECRET_BODY_LEN))


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def visible_prefix(secret: str) -> str:
    return secret[:VISIBLE_CHARS]
