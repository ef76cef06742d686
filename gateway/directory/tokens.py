"""Admin tokens: a user's credential for the admin API, acting with the user's role.

Shaped unlike API keys (``sk-gwa-``), so neither can be mistaken for the other, and stored the
same way: only a SHA-256 of about 238 random bits.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.access.principal import Principal
from gateway.access.roles import Role
from gateway.db.models import AdminToken, User
from gateway.keys.secrets import hash_secret

TOKEN_PREFIX = "sk-gwa-"
_BODY_LEN = 40
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_ALPHABET_SET = frozenset(_ALPHABET)
VISIBLE_CHARS = 13


def new_token() -> str:
    return TOKEN_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(_BODY_LEN))


def looks_like_token(secret: str) -> bool:
    body = secret[len(TOKEN_PREFIX) :]
    return secret.startswith(TOKEN_PREFIX) and len(body) == _BODY_LEN and _ALPHABET_SET.issuperset(body)


async def principal_for_token(sessions: async_sessionmaker[AsyncSession], secret: str) -> Principal | None:
    """The principal an admin token acts as; None for an unknown, revoked or expired token, or a
    user without a role or disabled. Read from SQL each time: a revoked token stops at once."""
    if not looks_like_token(secret):
        return None
    now = datetime.now(UTC)
    async with sessions.begin() as session:
        found = (
            await session.execute(
                select(AdminToken, User)
                .join(User, User.id == AdminToken.user_id)
                .where(AdminToken.secret_hash == hash_secret(secret))
            )
        ).first()
        if found is None:
            return None
        token, user = found
        if token.revoked_at is not None or (token.expires_at is not None and token.expires_at <= now):
            return None
        if user.role not in {r.value for r in Role} or user.role == Role.SUPERUSER or user.disabled_at is not None:
            return None
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            await session.execute(update(AdminToken).where(AdminToken.id == token.id).values(last_used_at=now))
        role = Role(user.role)
        return Principal(name=user.email, role=role, org_id=user.org_id, team_id=user.team_id, user_id=user.id)


def token_prefix(secret: str) -> str:
    """The visible start of a token, kept to name it in lists and the audit log."""
    return secret[:VISIBLE_CHARS]
