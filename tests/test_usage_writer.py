"""The batched usage writer against real databases: batching, idempotence, shutdown, spill and replay."""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.catalog.registry import BackendTarget, ModelRoute, Prices
from gateway.db.engine import create_engine
from gateway.db.migrate import upgrade
from gateway.db.models import UsageRecord
from gateway.keys.model import KeyInfo
from gateway.ledger.writer import UsageWriter
from gateway.proxy.exchange import Exchange
from gateway.wire.usage import Usage

NEVER = 60.0  # a flush interval no test waits for


def _row(request_id: str | None = None, **fields: Any) -> dict[str, Any]:
    return Exchange(request_id=request_id or uuid.uuid4().hex, endpoint="chat.completions", **fields).to_row()


def _full_row() -> dict[str, Any]:
    """A row with every kind of value the spill file has to carry: UUIDs, datetimes, ints, bools."""
    backend = BackendTarget(uuid.uuid4(), "b", "openai", "http://upstream", None)
    route = ModelRoute(
        model="chat",
        model_id=uuid.uuid4(),
        version_id=uuid.uuid4(),
        version=1,
        backend=backend,
        upstream_model="up",
        params={},
        prices=Prices(150_000, 75_000, 600_000),
        created=0,
    )
    key = KeyInfo(uuid.uuid4(), "gw-abc", "k", uuid.uuid4(), uuid.uuid4(), None, None, None)
    exchange = Exchange(
        request_id=uuid.uuid4().hex,
        endpoint="chat.completions",
        key=key,
        model="chat",
        route=route,
        usage=Usage(prompt_tokens=1000, completion_tokens=500, cached_tokens=400),
        status=200,
        streamed=True,
    )
    exchange.mark_first_byte()
    return exchange.to_row()


async def _migrated_engine(path: Path) -> AsyncEngine:
    url = f"sqlite+aiosqlite:///{path}"
    await asyncio.to_thread(upgrade, url)
    return create_engine(url)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = await _migrated_engine(tmp_path / "gateway.db")
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def spill_file(tmp_path: Path) -> Path:
    return tmp_path / "spill" / "usage-spill.jsonl"


def _writer(engine: AsyncEngine, spill_file: Path, **options: Any) -> UsageWriter:
    settings: dict[str, Any] = {"batch_size": 10, "flush_interval": NEVER, "max_pending": 10_000}
    return UsageWriter(engine, spill_file=spill_file, **(settings | options))


async def _count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(UsageRecord))).scalar_one())


async def _rows(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        result = await conn.execute(select(UsageRecord))
        return {row.request_id: row for row in result.all()}


async def _eventually(check: Callable[[], Any], seconds: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def _spilled_request_ids(spill_file: Path) -> list[str]:
    return [json.loads(line)["request_id"] for line in spill_file.read_text().splitlines()]


def _spill_left(spill_file: Path) -> bool:
    """Whether the spill file or a half-replayed copy is left (the lock file may stay)."""
    return spill_file.parent.exists() and any(not p.name.endswith(".lock") for p in spill_file.parent.iterdir())


def _write_spill(spill_file: Path, rows: list[dict[str, Any]]) -> None:
    spill_file.parent.mkdir(parents=True, exist_ok=True)
    spill_file.write_text("".join(json.dumps(row, default=str) + "\n" for row in rows))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_many_rows_are_all_written_in_batches(engine: AsyncEngine, spill_file: Path) -> None:
    writer = _writer(engine, spill_file, batch_size=7)
    await writer.start()
    for _ in range(50):
        writer.record(_row())
    await writer.flush()
    assert await _count(engine) == 50
    assert writer.written == 50
    await writer.stop()


async def test_a_full_batch_is_written_without_waiting_for_the_interval(engine: AsyncEngine, spill_file: Path) -> None:
    writer = _writer(engine, spill_file, batch_size=5)
    await writer.start()
    for _ in range(8):
        writer.record(_row())

    async def first_batch_landed() -> bool:
        return await _count(engine) >= 5

    await _eventually(first_batch_landed)
    assert await _count(engine) == 5  # the 3 left over wait for the interval (or a flush)
    await writer.flush()
    assert await _count(engine) == 8
    await writer.stop()


async def test_a_partial_batch_is_written_after_the_flush_interval(engine: AsyncEngine, spill_file: Path) -> None:
    writer = _writer(engine, spill_file, batch_size=100, flush_interval=0.05)
    await writer.start()
    writer.record(_row())

    async def landed() -> bool:
        return await _count(engine) == 1

    await _eventually(landed)
    await writer.stop()


async def test_same_request_id_twice_is_one_row(engine: AsyncEngine, spill_file: Path) -> None:
    writer = _writer(engine, spill_file)
    await writer.start()
    writer.record(_row("req-dup", status=200))
    writer.record(_row("req-dup", status=500))  # same batch
    await writer.flush()
    writer.record(_row("req-dup", status=502))  # later batch
    await writer.flush()
    rows = await _rows(engine)
    assert list(rows) == ["req-dup"]
    assert rows["req-dup"].status_code == 200
    await writer.stop()


async def test_stop_flushes_what_is_pending(engine: AsyncEngine, spill_file: Path) -> None:
    writer = _writer(engine, spill_file, batch_size=100)
    await writer.start()
    for _ in range(3):
        writer.record(_row())
    await writer.stop()
    assert await _count(engine) == 3
    assert not _spill_left(spill_file)


async def test_stop_while_a_batch_is_being_written_loses_no_row(tmp_path: Path, spill_file: Path) -> None:
    """Shutdown cancels the writer while its batch waits on a locked database: the batch is kept
    and written by the final flush once the lock is gone."""
    engine = await _migrated_engine(tmp_path / "locked.db")
    blocker = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    try:
        writer = _writer(engine, spill_file, batch_size=1)
        await writer.start()
        blocker.execute("BEGIN EXCLUSIVE")  # the writer's insert now waits (busy_timeout)
        writer.record(_row())
        await asyncio.sleep(0.3)  # the batch is taken and its insert is waiting on the lock
        stopping = asyncio.create_task(writer.stop())
        await asyncio.sleep(0.3)
        blocker.execute("COMMIT")
        await stopping
        assert await _count(engine) == 1
        assert not _spill_left(spill_file)
    finally:
        blocker.close()
        await engine.dispose()


async def test_rows_keep_their_values(engine: AsyncEngine, spill_file: Path) -> None:
    row = _full_row()
    writer = _writer(engine, spill_file)
    await writer.start()
    writer.record(row)
    await writer.stop()
    stored = (await _rows(engine))[row["request_id"]]
    assert {name: getattr(stored, name) for name in row} == row
    assert stored.cost_nano_usd == 120_000 + 300_000


def _unreachable_url(kind: str, tmp_path: Path) -> str:
    if kind == "postgresql-closed-port":
        return f"postgresql+asyncpg://gateway:gateway@127.0.0.1:{_closed_port()}/gateway"
    directory = tmp_path / "a-directory-not-a-file"
    directory.mkdir()
    return f"sqlite+aiosqlite:///{directory}"


@pytest.mark.parametrize("kind", ["postgresql-closed-port", "sqlite-file-cannot-open"])
async def test_rows_spill_when_sql_is_down_and_replay_at_next_start(
    tmp_path: Path, spill_file: Path, kind: str
) -> None:
    rows = [_full_row(), _row(), _row()]
    down = create_engine(_unreachable_url(kind, tmp_path))
    writer = _writer(down, spill_file)
    await writer.start()
    for row in rows:
        writer.record(row)
    await writer.stop()
    await down.dispose()
    assert writer.written == 0
    assert _spilled_request_ids(spill_file) == [row["request_id"] for row in rows]

    up = await _migrated_engine(tmp_path / "recovered.db")
    try:
        replayer = _writer(up, spill_file)
        await replayer.start()
        assert not _spill_left(spill_file)
        stored = await _rows(up)
        assert sorted(stored) == sorted(row["request_id"] for row in rows)
        first = stored[rows[0]["request_id"]]
        assert {name: getattr(first, name) for name in rows[0]} == rows[0]
        await replayer.stop()
    finally:
        await up.dispose()


async def test_replay_skips_rows_already_written(engine: AsyncEngine, spill_file: Path) -> None:
    row = _row("req-written-and-spilled")
    writer = _writer(engine, spill_file)
    await writer.start()
    writer.record(row)
    await writer.stop()
    _write_spill(spill_file, [row])

    replayer = _writer(engine, spill_file)
    await replayer.start()
    await replayer.stop()
    assert list(await _rows(engine)) == ["req-written-and-spilled"]
    assert not _spill_left(spill_file)


async def test_rows_beyond_max_pending_spill_to_disk_off_the_request_path(
    engine: AsyncEngine, spill_file: Path
) -> None:
    writer = _writer(engine, spill_file, max_pending=2, batch_size=100)
    await writer.start()
    rows = [_row() for _ in range(5)]
    for row in rows:
        writer.record(row)
    assert not spill_file.exists(), "record() itself never touches the disk"

    async def overflow_spilled() -> bool:
        return spill_file.exists() and _spilled_request_ids(spill_file) == [row["request_id"] for row in rows[2:]]

    await _eventually(overflow_spilled)
    await writer.stop()
    replayer = _writer(engine, spill_file)
    await replayer.start()  # the next start replays the spill file
    await replayer.stop()
    assert sorted(await _rows(engine)) == sorted(row["request_id"] for row in rows)
    assert not _spill_left(spill_file)


async def test_no_spill_file_means_nothing_to_replay(engine: AsyncEngine, spill_file: Path) -> None:
    writer = _writer(engine, spill_file)
    await writer.start()
    await writer.stop()
    assert await _count(engine) == 0
    assert not _spill_left(spill_file)


def _append_torn_line(spill_file: Path) -> None:
    with spill_file.open("a") as out:
        out.write('{"request_id": "torn-by-a-crash", "endpoint": "chat.comp')


async def test_torn_last_spill_line_loses_no_complete_rows(engine: AsyncEngine, spill_file: Path) -> None:
    rows = [_row(), _row()]
    _write_spill(spill_file, rows)
    _append_torn_line(spill_file)  # a process killed while spilling leaves half a line
    for _attempt in range(2):  # a failed start is followed by a restart
        writer = _writer(engine, spill_file)
        try:
            await writer.start()
        except Exception:
            continue
        await writer.stop()
        break
    assert sorted(await _rows(engine)) == sorted(row["request_id"] for row in rows)


async def test_failed_batch_is_retried_once_sql_recovers_without_new_records(tmp_path: Path, spill_file: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'late.db'}"
    engine = create_engine(url)  # no tables yet: every insert fails
    writer = _writer(engine, spill_file, flush_interval=0.02)
    await writer.start()
    try:
        for _ in range(3):
            writer.record(_row())
        await asyncio.sleep(0.2)  # the first attempt has failed by now
        await asyncio.to_thread(upgrade, url)

        async def written() -> bool:
            return await _count(engine) == 3

        await _eventually(written, seconds=2.5)  # the writer backs off 1 s between attempts
    finally:
        await writer.stop()
        await engine.dispose()


def test_rows_carry_utc_datetimes() -> None:
    row = _row()
    assert row["started_at"].tzinfo is UTC
    assert row["finished_at"] >= row["started_at"]
    assert row["started_at"] <= datetime.now(UTC)


async def test_a_row_the_database_refuses_is_set_aside_without_blocking_the_rest(
    engine: AsyncEngine, spill_file: Path
) -> None:
    # A NOT NULL column left empty: the database rejects that row, not the batch's others.
    good = [_row() for _ in range(4)]
    poison = {**_row(), "endpoint": None}
    writer = _writer(engine, spill_file, batch_size=10)
    await writer.start()
    for row in [*good[:2], poison, *good[2:]]:
        writer.record(row)
    await writer.stop()
    assert sorted(await _rows(engine)) == sorted(row["request_id"] for row in good)
    rejected = [json.loads(line) for line in (spill_file.parent / "usage-rejected.jsonl").read_text().splitlines()]
    assert [row["request_id"] for row in rejected] == [poison["request_id"]]
    assert rejected[0]["rejected_because"]
