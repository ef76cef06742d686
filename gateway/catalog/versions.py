"""Model versions and their lifecycle: draft, canary (a share of traffic), active, retired."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.audit.changes import Changes


class VersionService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], changes: Changes) -> None:
        self._sessions = sessions
        self._changes = changes
