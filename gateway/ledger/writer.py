"""Write usage records off the request path, in batches.

``record`` only appends to an in-memory deque. A background task writes a batch when it holds
``batch_size`` rows or its oldest row has waited ``flush_interval``. Inserts ignore request ids
already present, so a retried batch never writes a row twice. Rows that cannot be written (SQL
down at shutdown, or more than ``max_pending`` waiting) spill to a JSON-lines file that the next
start replays, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.db.models import UsageRecord

log = logging.getLogger(__name__)
_TABLE: Table = UsageRecord.__table__  # type: ignore[assignment]
_UUID_COLUMNS = ("key_id", "team_id", "org_id", "model_version_id", "backend_id")
_TIME_COLUMNS = ("started_at", "finished_at")


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
        self._spill_file = spill_file
        self._pending: deque[dict[str, Any]] = deque()
        self._wakeup = asyncio.Event()
        self._full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._writing = asyncio.Lock()  # flush() must also wait for a batch already in flight
        self._stopping = False
        self.written = 0

    def record(self, row: dict[str, Any]) -> None:
        if len(self._pending) >= self._max_pending:
            self._spill([row])
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
            self._spill(list(self._pending))
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
        try:
            async with self._engine.begin() as conn:
                await conn.execute(self._insert(conn.dialect.name), rows)
        except Exception:
            log.exception("usage batch of %d rows not written; will retry", len(rows))
            return False
        self.written += len(rows)
        return True

    @staticmethod
    def _insert(dialect: str) -> Any:
        if dialect == "postgresql":
            return postgresql.insert(_TABLE).on_conflict_do_nothing(index_elements=["request_id"])
        if dialect == "sqlite":
            return sqlite.insert(_TABLE).on_conflict_do_nothing(index_elements=["request_id"])
        return _TABLE.insert()

    def _spill(self, rows: list[dict[str, Any]]) -> None:
        log.warning("spilling %d usage rows to %s", len(rows), self._spill_file)
        self._spill_file.parent.mkdir(parents=True, exist_ok=True)
        with self._spill_file.open("a") as out:
            for row in rows:
                out.write(json.dumps(row, default=str) + "\n")

    async def _replay_spill(self) -> None:
        if not self._spill_file.exists():
            return
        replaying = self._spill_file.with_suffix(".replaying")
        self._spill_file.rename(replaying)
        rows = [_decode(line) for line in replaying.read_text().splitlines() if line.strip()]
        for start in range(0, len(rows), self._batch_size):
            if not await self._write(rows[start : start + self._batch_size]):
                self._spill(rows[start:])
                break
        replaying.unlink()


def _decode(line: str) -> dict[str, Any]:
    row: dict[str, Any] = json.loads(line)
    for name in _UUID_COLUMNS:
        if row.get(name):
            row[name] = uuid.UUID(row[name])
    for name in _TIME_COLUMNS:
        row[name] = datetime.fromisoformat(row[name])
    return row
