"""Write usage records off the request path, in batches.

``record`` only appends to an in-memory deque. A background task writes a batch when it holds
``batch_size`` rows or its oldest row has waited ``flush_interval``. Inserts ignore request ids
already present, so a retried batch never writes a row twice. Rows that cannot be written (SQL
down at shutdown, or more than ``max_pending`` waiting) spill to a JSON-lines file that the next
start replays, so nothing is lost. A row the database refuses as data (a constraint or a value it
cannot store) is set aside in ``usage-rejected.jsonl`` with the error, so one bad row cannot
stall the ledger; any other failure counts as an outage and the rows wait for SQL to return.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from pathlib import Path
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.db.models import UsageRecord
from gateway.ledger.spill import SpillFile

log = logging.getLogger(__name__)
_TABLE: Table = UsageRecord.__table__  # type: ignore[assignment]
_RETRY_AFTER_SECONDS = 1.0
_STOP_FLUSH_SECONDS = 10.0


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
        self._max_pending = max(1, max_pending)
        self._spill = SpillFile(spill_file)
        self._rejected = SpillFile(spill_file.with_name("usage-rejected.jsonl"))
        self._pending: deque[dict[str, Any]] = deque()
        self._overflow: list[dict[str, Any]] = []  # beyond max_pending: to disk, off the request path
        self._wakeup = asyncio.Event()
        self._full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._writing = asyncio.Lock()  # flush() must also wait for a batch already in flight
        self._stopped = False
        self.written = 0

    def record(self, row: dict[str, Any]) -> None:
        if self._stopped:
            self._spill.append([row])  # a straggler after shutdown still lands on disk
            return
        if len(self._pending) >= self._max_pending:
            self._overflow.append(row)
            self._full.set()  # wake the writer now to move the overflow to disk
        else:
            self._pending.append(row)
        self._wakeup.set()
        if len(self._pending) >= self._batch_size:
            self._full.set()

    async def start(self) -> None:
        await self._spill.replay(self._write, self._batch_size)
        self._task = asyncio.create_task(self._run(), name="usage-writer")

    async def stop(self) -> None:
        """Flush what is pending, within a bound; spill what SQL will not take in time."""
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        try:
            async with asyncio.timeout(_STOP_FLUSH_SECONDS):
                await self.flush()
        except Exception:
            log.warning("usage flush at shutdown did not finish; spilling to %s", self._spill.path)
        finally:
            self._spill_overflow()
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
        while True:
            try:
                await self._cycle()
            except asyncio.CancelledError:
                raise
            except Exception:  # the writer must outlive any one failure
                log.exception("usage writer cycle failed")
                await asyncio.sleep(_RETRY_AFTER_SECONDS)

    async def _cycle(self) -> None:
        await self._wakeup.wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._full.wait(), self._interval)
        self._spill_overflow()
        async with self._writing:
            written = await self._write_next()
        if not written:
            await asyncio.sleep(_RETRY_AFTER_SECONDS)  # SQL is failing: back off before the next try

    def _spill_overflow(self) -> None:
        if self._overflow:
            rows, self._overflow = self._overflow, []
            self._spill.append(rows)

    async def _write_next(self) -> bool:
        """Write one batch; on failure put it back in front, in order."""
        batch = self._take()
        try:
            written = await self._write(batch) if batch else True
        except BaseException:
            # Cancelled mid-write (shutdown): keep the rows. A replay skips any that did land.
            self._pending.extendleft(reversed(batch))
            raise
        if not written:
            self._pending.extendleft(reversed(batch))
            self._wakeup.set()  # retry even if no new record arrives
            if len(self._pending) >= self._batch_size:
                self._full.set()
            return False
        return True

    def _take(self) -> list[dict[str, Any]]:
        batch = [self._pending.popleft() for _ in range(min(self._batch_size, len(self._pending)))]
        if not self._pending and not self._overflow:
            self._wakeup.clear()
        if len(self._pending) < self._batch_size:
            self._full.clear()
        return batch

    async def _write(self, rows: list[dict[str, Any]]) -> bool:
        """Insert rows; False means SQL cannot take them now and they should be kept for later."""
        try:
            await self._insert_rows(rows)
        except (IntegrityError, DataError):
            return await self._write_one_by_one(rows)
        except Exception as exc:
            log.warning("usage batch of %d rows not written (%s); will retry", len(rows), type(exc).__name__)
            return False
        self.written += len(rows)
        return True

    async def _write_one_by_one(self, rows: list[dict[str, Any]]) -> bool:
        """The batch held a row the database refuses as data: keep the good ones, set that one aside."""
        refused: list[dict[str, Any]] = []
        for row in rows:
            try:
                await self._insert_rows([row])
            except (IntegrityError, DataError) as exc:
                refused.append({**row, "rejected_because": str(exc.orig or exc)[:500]})
            except Exception:
                return False  # an outage after all: retry the batch; written rows will be skipped
            else:
                self.written += 1
        if refused:
            log.error("%d usage rows refused by the database, kept in %s", len(refused), self._rejected.path)
            self._rejected.append(refused)
        return True

    async def _insert_rows(self, rows: list[dict[str, Any]]) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(self._insert(conn.dialect.name), rows)

    @staticmethod
    def _insert(dialect: str) -> Any:
        if dialect == "postgresql":
            return postgresql.insert(_TABLE).on_conflict_do_nothing(index_elements=["request_id"])
        if dialect == "sqlite":
            return sqlite.insert(_TABLE).on_conflict_do_nothing(index_elements=["request_id"])
        return _TABLE.insert()
