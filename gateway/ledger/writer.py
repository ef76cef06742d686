"""Write usage records off the request path, in batches.

``record`` only appends to an in-memory deque. A background task writes a batch when it holds
``batch_size`` rows or its oldest row has waited ``flush_interval``. Inserts ignore request ids
already present, so a retried batch never writes a row twice. Rows that cannot be written (SQL
down at shutdown, or more than ``max_pending`` waiting) spill to a JSON-lines file that the next
start replays, so nothing is lost. A row the database refuses while it accepts others is set
aside in ``usage-rejected.jsonl`` with the error, so one bad row cannot stall the ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from pathlib import Path
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.db.models import UsageRecord
from gateway.ledger.spill import SpillFile

log = logging.getLogger(__name__)
_RETRIES_BEFORE_REJECTING = 5
_TABLE: Table = UsageRecord.__table__  # type: ignore[assignment]


class UsageWriter:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        batch_size: int,
        flush_interval: float,
        max_pending: int,
        spill_file: Path,
    ) -> None:
        self._engine = engine
        self._batch_size = max(1, batch_size)
        self._interval = flush_interval
        self._max_pending = max_pending
        self._spill = SpillFile(spill_file)
        self._rejected = SpillFile(spill_file.with_name("usage-rejected.jsonl"))
        self._pending: deque[dict[str, Any]] = deque()
        self._wakeup = asyncio.Event()
        self._full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._writing = asyncio.Lock()  # flush() must also wait for a batch already in flight
        self._stopping = False
        self._refusals = 0
        self.written = 0

    def record(self, row: dict[str, Any]) -> None:
        if len(self._pending) >= self._max_pending:
            self._spill.append([row])
            return
        self._pending.append(row)
        self._wakeup.set()
        if len(self._pending) >= self._batch_size:
            self._full.set()

    async def start(self) -> None:
        await self._replay_spill()
        self._task = asyncio.create_task(self._run(), name="usage-writer")

    async def stop(self) -> None:
        """Flush everything still pending; spill what SQL will not take."""
        self._stopping = True
        self._wakeup.set()
        self._full.set()
        if self._task is not None:
            await self._task
        if self._pending:
            self._spill.append(list(self._pending))
            self._pending.clear()

    async def flush(self) -> None:
        """Write what is pending now, after any batch in flight (tests and shutdown)."""
        async with self._writing:
            while self._pending:
                if not await self._write_next():
                    return

    async def _run(self) -> None:
        while not self._stopping:
            await self._wakeup.wait()
            if not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), self._interval)
            async with self._writing:
                written = await self._write_next()
            if not written:
                await asyncio.sleep(1.0)  # SQL is failing: back off before the next try
        await self.flush()

    async def _write_next(self) -> bool:
        """Write one batch; on failure put it back in front, in order."""
        batch = self._take()
        if batch and not await self._write(batch):
            self._pending.extendleft(reversed(batch))
            self._wakeup.set()  # retry even if no new record arrives
            if len(self._pending) >= self._batch_size:
                self._full.set()
            return False
        return True

    def _take(self) -> list[dict[str, Any]]:
        batch = [self._pending.popleft() for _ in range(min(self._batch_size, len(self._pending)))]
        if not self._pending:
            self._wakeup.clear()
        if len(self._pending) < self._batch_size:
            self._full.clear()
        return batch

    async def _write(self, rows: list[dict[str, Any]]) -> bool:
        """Insert rows; False means SQL cannot take them now and they should be kept for later."""
        try:
            await self._insert_rows(rows)
        except Exception:
            if not await self._reachable():
                log.warning("usage batch of %d rows not written: database unavailable; will retry", len(rows))
                return False
            return await self._write_one_by_one(rows)
        self.written += len(rows)
        return True

    async def _insert_rows(self, rows: list[dict[str, Any]]) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(self._insert(conn.dialect.name), rows)

    async def _write_one_by_one(self, rows: list[dict[str, Any]]) -> bool:
        """SQL is up but refused the batch. Rows it refuses while it takes others are poison: set
        them aside with their error so they never block the ledger. If it takes none, the fault
        is likely the schema (not migrated yet): retry a few times before setting them aside."""
        refused: list[dict[str, Any]] = []
        for row in rows:
            try:
                await self._insert_rows([row])
                self.written += 1
            except Exception as exc:
                refused.append({**row, "rejected_because": str(exc)[:500]})
        if len(refused) == len(rows) and self._refusals < _RETRIES_BEFORE_REJECTING:
            self._refusals += 1
            log.warning("database refused all %d usage rows; will retry", len(rows))
            return False
        self._refusals = 0
        if refused:
            log.error("%d usage rows refused by the database, kept in %s", len(refused), self._rejected.path)
            self._rejected.append(refused)
        return True

    async def _reachable(self) -> bool:
        try:
            async with self._engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    @staticmethod
    def _insert(dialect: str) -> Any:
        if dialect == "postgresql":
            return postgresql.insert(_TABLE).on_conflict_do_nothing(index_elements=["request_id"])
        if dialect == "sqlite":
            return sqlite.insert(_TABLE).on_conflict_do_nothing(index_elements=["request_id"])
        return _TABLE.insert()

    async def _replay_spill(self) -> None:
        await self._spill.replay(self._write, self._batch_size)
