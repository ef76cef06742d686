"""Organizations, teams and users as managed objects (create, list, show, update, delete) and
users' admin tokens. Every write goes through the change feed, so it is audited and live."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.audit.changes import Changes


class Directory:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], changes: Changes) -> None:
        self._sessions = sessions
        self._changes = changes
