"""Wire shapes of ``/admin/audit``: the entries of the audit log, newest first, and the query
parameters that filter them (documented here; gateway.audit.log checks them with its own messages)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar.params import QueryParameter

from gateway.audit.log import DEFAULT_LIMIT, MAX_ID, MAX_LIMIT
from gateway.db.models import AuditEntry

_NO_NUL = r"^[^\x00]*$"


def text_filter(description: str) -> Any:
    """A query parameter matched exactly against one column."""
    return QueryParameter(min_length=1, max_length=400, pattern=_NO_NUL, description=description)


def moment_filter(description: str) -> Any:
    return QueryParameter(
        description=f"{description}: an RFC 3339 date-time with a time zone", schema_extra={"format": "date-time"}
    )


ORG_FILTER = QueryParameter(description="Only this organization's entries", schema_extra={"format": "uuid"})
LIMIT = QueryParameter(ge=1, le=MAX_LIMIT, description=f"At most this many entries (default {DEFAULT_LIMIT})")
BEFORE_ID = QueryParameter(
    ge=1, le=MAX_ID, description="Only entries older than this one: the previous page's next_before_id"
)

Limit = Annotated[int, LIMIT]
BeforeId = Annotated[int | None, BEFORE_ID]


class AuditEntryView(msgspec.Struct):
    id: int
    at: datetime
    actor: str
    """``admin-key``, a user's e-mail, ``cli:<os user>``, ``models-file``."""
    role: str
    source: str
    """``api``, ``cli``, ``sync`` or ``internal``."""
    remote: str | None
    """The client's address, or the host the CLI ran on."""
    action: str
    """``key.create``, ``version.promote``, ``limit.set``, ...: what was done."""
    object_type: str
    object_id: str
    object_name: str | None
    org_id: uuid.UUID | None
    team_id: uuid.UUID | None
    before: dict[str, Any] | None
    """The object before the change (None: it did not exist)."""
    after: dict[str, Any] | None
    """The object after the change (None: it is gone)."""
    generation: int
    """The control-plane generation the change made."""

    @classmethod
    def of(cls, row: AuditEntry) -> AuditEntryView:
        return cls(
            id=row.id,
            at=row.at,
            actor=row.actor,
            role=row.role,
            source=row.source,
            remote=row.remote,
            action=row.action,
            object_type=row.object_type,
            object_id=row.object_id,
            object_name=row.object_name,
            org_id=row.org_id,
            team_id=row.team_id,
            before=row.before,
            after=row.after,
            generation=row.generation,
        )


class AuditList(msgspec.Struct):
    data: list[AuditEntryView]
    """Newest first."""
    next_before_id: int | None
    """Pass as ``before_id`` for the next (older) page; None when this page is the last."""
