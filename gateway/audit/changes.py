"""A control-plane change, written whole: the change itself, its audit entries and the raised
generation commit in one transaction, and only then are the replicas told.

Services write through ``Changes.transaction``; each ``record`` call appends one audit entry. The
generation is raised once per transaction, first thing in it (the single ``control_state`` row is
locked until commit), so changes run one at a time and commit in generation order: a replica that
has read generation N has every change up to N. After the commit, ``on_commit`` listeners run (the
runtime's: rebuild this replica's snapshot at once and publish a notice to the others).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.audit.actor import Actor
from gateway.db.models import AuditEntry, ControlState, utcnow

log = logging.getLogger(__name__)

Listener = Callable[[int], Awaitable[None]]


@dataclass
class ChangeSet:
    """One transaction's session and the audit entries it will append."""

    session: AsyncSession
    actor: Actor
    entries: list[AuditEntry] = field(default_factory=list)

    def record(
        self,
        action: str,
        object_type: str,
        object_id: uuid.UUID | str,
        *,
        name: str | None = None,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        org_id: uuid.UUID | None = None,
        team_id: uuid.UUID | None = None,
    ) -> None:
        """Append an entry. ``before``/``after`` are plain JSON and never hold a secret (mask first)."""
        self.entries.append(
            AuditEntry(
                at=utcnow(),
                actor=self.actor.name[:200],
                role=self.actor.role,
                source=self.actor.source,
                remote=(self.actor.remote or None) and str(self.actor.remote)[:64],
                action=action,
                object_type=object_type,
                object_id=str(object_id)[:64],
                object_name=name[:400] if name else None,
                org_id=org_id,
                team_id=team_id,
                before=before,
                after=after,
            )
        )


class Changes:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._listeners: list[Listener] = []

    def on_commit(self, listener: Listener) -> None:
        self._listeners.append(listener)

    @contextlib.asynccontextmanager
    async def transaction(self, actor: Actor) -> AsyncIterator[ChangeSet]:
        """A transaction for a change; nothing is written (nor told) when the block raises."""
        async with self._sessions.begin() as session:
            # First: it locks the one control_state row, so changes run one at a time and each
            # reads what the one before it committed (two promotions cannot both win).
            generation = await raise_generation(session)
            change = ChangeSet(session, actor)
            yield change
            for entry in change.entries:
                entry.generation = generation
            session.add_all(change.entries)
        if change.entries:
            await self.committed(generation)

    async def committed(self, generation: int) -> None:
        for listener in self._listeners:
            try:
                await listener(generation)
            except Exception:  # the change is committed; the periodic check brings it in anyway
                log.warning("change %d committed, but a listener failed", generation, exc_info=True)


async def raise_generation(session: AsyncSession) -> int:
    result = await session.execute(
        update(ControlState)
        .where(ControlState.id == 1)
        .values(generation=ControlState.generation + 1)
        .returning(ControlState.generation)
    )
    return int(result.scalar_one())


async def current_generation(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        value = await session.scalar(select(ControlState.generation).where(ControlState.id == 1))
    return int(value or 0)
