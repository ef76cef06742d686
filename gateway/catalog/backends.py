"""Backends as managed objects: created and changed through the admin API and the CLI, with a
secret stored encrypted (never returned whole, never logged)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.audit.changes import Changes
from gateway.vault import Vault


class BackendService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], changes: Changes, vault: Vault) -> None:
        self._sessions = sessions
        self._changes = changes
        self._vault = vault
