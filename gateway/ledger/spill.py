"""Usage rows that SQL would not take, kept on disk until a later start writes them.

Several worker processes share one data folder, so every touch of the files happens under an
exclusive ``flock``. A replay first moves the spill file's lines into ``<name>.replaying`` and
deletes that file only after its rows are written: a crash mid-replay leaves it to be replayed
again (inserts skip request ids already stored, so nothing is counted twice). A torn line, from
a process killed mid-write, is skipped and logged; the complete lines around it still count.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
_UUID_COLUMNS = ("key_id", "team_id", "org_id", "model_version_id", "backend_id")
_TIME_COLUMNS = ("started_at", "finished_at")


class SpillFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._replaying = path.with_name(path.name + ".replaying")
        self._lock = path.with_name(path.name + ".lock")

    def append(self, rows: list[dict[str, Any]]) -> None:
        log.warning("spilling %d usage rows to %s", len(rows), self.path)
        with self._locked(), self.path.open("a") as out:
            out.writelines(json.dumps(row, default=str) + "\n" for row in rows)

    async def replay(self, write: Callable[[list[dict[str, Any]]], Awaitable[bool]], batch_size: int) -> None:
        """Hand the spilled rows to ``write`` in batches; forget them only once all are written."""
        with self._locked():
            if self.path.exists():
                with self._replaying.open("a") as out:
                    out.write(self.path.read_text())
                self.path.unlink()
            if not self._replaying.exists():
                return
            rows = _decode_lines(self._replaying.read_text())
            for start in range(0, len(rows), batch_size):
                if not await write(rows[start : start + batch_size]):
                    return  # kept for the next start; rows already written will be skipped then
            self._replaying.unlink()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _decode_lines(text: str) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(_decode(line))
        except (ValueError, KeyError, TypeError, AttributeError):
            log.error("skipping unreadable usage spill line %d: %.200s", number, line)
    return rows


def _decode(line: str) -> dict[str, Any]:
    row: dict[str, Any] = json.loads(line)
    for name in _UUID_COLUMNS:
        if row.get(name):
            row[name] = uuid.UUID(row[name])
    for name in _TIME_COLUMNS:
        row[name] = datetime.fromisoformat(row[name])
    return row
