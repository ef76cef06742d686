"""Reading the audit log, with filters. Nothing here (nor anywhere) edits or deletes it.

Entries are read newest first; ``before_id`` pages on (the entries older than the last one read):
ids only grow, so a page never shifts while new entries are appended.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.db.models import AuditEntry
from gateway.errors import InvalidRequest, NotFound

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_ID = 2**63 - 1
"""The largest id a BIGINT holds: a larger one would be a database error, not an empty answer."""
_TEXT_MAX = 400


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """What to read; every filter left None matches everything. Text filters match exactly."""

    actor: str | None = None
    role: str | None = None
    source: str | None = None
    action: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    object: str | None = None
    """An object's id or its name."""
    org_id: uuid.UUID | None = None
    since: datetime | None = None
    """Entries at or after this moment."""
    until: datetime | None = None
    """Entries before this moment."""
    limit: int = DEFAULT_LIMIT
    before_id: int | None = None


def parse_moment(value: str | None, field: str) -> datetime | None:
    """An ISO 8601 / RFC 3339 date-time with a zone; InvalidRequest names ``field`` otherwise."""
    if value is None:
        return None
    text = value.strip().upper()
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise InvalidRequest(f"{field}: expected an ISO date-time such as 2026-01-31T12:00:00Z.", param=field) from None
    if moment.tzinfo is None:
        raise InvalidRequest(f"{field}: the date-time needs a time zone (Z or +01:00).", param=field)
    try:
        return moment.astimezone(UTC)  # SQLite compares the stored UTC times as text
    except OverflowError:
        raise InvalidRequest(f"{field}: out of range.", param=field) from None


def parse_org(value: str | None) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidRequest("org_id: expected an organization's id (a UUID).", param="org_id") from None


def check_query(query: AuditQuery) -> None:
    """Bad filters are refused, naming the field, before any SQL runs."""
    if not 1 <= query.limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit: expected a whole number from 1 to {MAX_LIMIT}.", param="limit")
    if query.before_id is not None and not 1 <= query.before_id <= MAX_ID:
        raise InvalidRequest("before_id: expected an entry id (a whole number >= 1).", param="before_id")
    texts = ("actor", "role", "source", "action", "object_type", "object_id", "object")
    for field in texts:
        value = getattr(query, field)
        if value is not None and (not value or len(value) > _TEXT_MAX or "\x00" in value):
            raise InvalidRequest(f"{field}: expected 1 to {_TEXT_MAX} characters, no NUL.", param=field)


class AuditLog:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def entries(self, query: AuditQuery, *, org_filter: uuid.UUID | None = None) -> list[AuditEntry]:
        """Newest first, at most ``query.limit``; ``org_filter``: only that organization's entries."""
        check_query(query)
        statement = _filtered(select(AuditEntry), query)
        if org_filter is not None:
            statement = statement.where(AuditEntry.org_id == org_filter)
        statement = statement.order_by(AuditEntry.id.desc()).limit(query.limit)
        async with self._sessions() as session:
            return list((await session.scalars(statement)).all())

    async def entry(self, entry_id: int) -> AuditEntry:
        if not 1 <= entry_id <= MAX_ID:
            raise NotFound(f"No audit entry {entry_id}.")
        async with self._sessions() as session:
            found = await session.get(AuditEntry, entry_id)
        if found is None:
            raise NotFound(f"No audit entry {entry_id}.")
        return found


def _filtered(statement: Select[Any], query: AuditQuery) -> Select[Any]:
    exact = (
        (AuditEntry.actor, query.actor),
        (AuditEntry.role, query.role),
        (AuditEntry.source, query.source),
        (AuditEntry.action, query.action),
        (AuditEntry.object_type, query.object_type),
        (AuditEntry.object_id, query.object_id),
        (AuditEntry.org_id, query.org_id),
    )
    for column, value in exact:
        if value is not None:
            statement = statement.where(column == value)
    if query.object is not None:
        statement = statement.where(or_(AuditEntry.object_id == query.object, AuditEntry.object_name == query.object))
    if query.since is not None:
        statement = statement.where(AuditEntry.at >= query.since)
    if query.until is not None:
        statement = statement.where(AuditEntry.at < query.until)
    if query.before_id is not None:
        statement = statement.where(AuditEntry.id < query.before_id)
    return statement
