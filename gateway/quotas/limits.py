"""Limits set through the admin API and the CLI, kept in SQL beside those of policies/quotas.yaml.

Each is stored as the quotas file would write it and validated by the same code, so both ways of
setting a limit mean the same thing. Setting a limit on a scope, name and model that already has
one replaces it. The request path never reads SQL for them: replicas reload them in the
background (``GATEWAY_QUOTA_REFRESH_SECONDS``); the one whose admin API made the change at once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.db.models import QuotaLimit
from gateway.errors import Conflict, InvalidRequest, NotFound
from gateway.quotas.config import LimitRule, parse_rule


@dataclass(frozen=True, slots=True)
class StoredLimit:
    id: uuid.UUID
    rule: LimitRule
    spec: dict[str, Any]


def _invalid(where: str, problem: str) -> InvalidRequest:
    return InvalidRequest(f"{where}: {problem}" if where else problem, param=where or None)


def validate(spec: Any) -> LimitRule:
    """A limit from an API client: InvalidRequest names the field, as the file's errors do."""
    return parse_rule(spec, "", lambda where, problem: _invalid(where.lstrip("."), problem))


class LimitService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def list(self) -> list[StoredLimit]:
        async with self._sessions() as session:
            rows = (await session.scalars(select(QuotaLimit).order_by(QuotaLimit.scope, QuotaLimit.name))).all()
        return [StoredLimit(row.id, validate(row.spec), row.spec) for row in rows]

    async def put(self, spec: Any) -> StoredLimit:
        rule = validate(spec)
        stored = {key: value for key, value in spec.items() if value is not None}
        try:
            return await self._put(rule, stored)
        except IntegrityError:  # the same target set at the same moment elsewhere: the other won
            raise Conflict("That limit was being set concurrently; retry.") from None

    async def _put(self, rule: LimitRule, stored: dict[str, Any]) -> StoredLimit:
        async with self._sessions.begin() as session:
            query = select(QuotaLimit).where(
                QuotaLimit.scope == rule.scope, QuotaLimit.name == rule.name, QuotaLimit.model == (rule.model or "")
            )
            row = await session.scalar(query) or QuotaLimit(scope=rule.scope, name=rule.name, model=rule.model or "")
            row.spec = stored
            session.add(row)
            await session.flush()
            return StoredLimit(row.id, rule, stored)

    async def remove(self, limit_id: str) -> None:
        try:
            parsed = uuid.UUID(limit_id)
        except ValueError:
            raise NotFound(f"No limit with id {limit_id[:64]!r}.") from None
        async with self._sessions.begin() as session:
            result = await session.execute(delete(QuotaLimit).where(QuotaLimit.id == parsed))
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise NotFound(f"No limit with id {limit_id!r}.")
