"""Alembic migrations: one head, a clean up/down/up cycle, and a schema that matches the ORM models.

Runs on SQLite files in tmp_path and on the PostgreSQL database ``gateway_migrations`` (never the
end-to-end suite's ``gateway_test``), whose ``public`` schema is emptied before each use.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from gateway.db.engine import create_engine
from gateway.db.migrate import alembic_config, downgrade, upgrade
from gateway.db.models import Base

POSTGRES_URL = os.environ.get(
    "GATEWAY_TEST_MIGRATIONS_URL",
    "postgresql+asyncpg://gateway:gateway@127.0.0.1:5432/gateway_migrations",
)
MODEL_TABLES = set(Base.metadata.tables)


async def _reset_postgres(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    else:
        await _reset_postgres(POSTGRES_URL)
        yield POSTGRES_URL


async def _inspect(url: str, look: Any) -> Any:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(look)
    finally:
        await engine.dispose()


def _tables(sync: Connection) -> set[str]:
    return set(inspect(sync).get_table_names())


def _current_revision(sync: Connection) -> str | None:
    return MigrationContext.configure(sync).get_current_revision()


def _schema_diffs(sync: Connection) -> list[Any]:
    context = MigrationContext.configure(sync, opts={"compare_type": True, "compare_server_default": True})
    return list(compare_metadata(context, Base.metadata))


def _head() -> str:
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1
    return heads[0]


def test_alembic_has_exactly_one_head() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1
    assert len(script.get_bases()) == 1


def test_every_revision_can_be_downgraded() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    for revision in script.walk_revisions():
        assert callable(getattr(revision.module, "downgrade", None)), revision.revision


async def test_upgrade_creates_every_model_table_and_stamps_the_head(database_url: str) -> None:
    await asyncio.to_thread(upgrade, database_url)
    assert await _inspect(database_url, _tables) == MODEL_TABLES | {"alembic_version"}
    assert await _inspect(database_url, _current_revision) == _head()


async def test_upgrade_downgrade_upgrade_round_trip(database_url: str) -> None:
    await asyncio.to_thread(upgrade, database_url, "head")
    assert await _inspect(database_url, _tables) >= MODEL_TABLES

    await asyncio.to_thread(downgrade, database_url, "base")
    assert await _inspect(database_url, _tables) == {"alembic_version"}
    assert await _inspect(database_url, _current_revision) is None

    await asyncio.to_thread(upgrade, database_url, "head")
    assert await _inspect(database_url, _tables) == MODEL_TABLES | {"alembic_version"}
    assert await _inspect(database_url, _current_revision) == _head()


async def test_upgrade_twice_is_a_no_op(database_url: str) -> None:
    await asyncio.to_thread(upgrade, database_url)
    await asyncio.to_thread(upgrade, database_url)
    assert await _inspect(database_url, _current_revision) == _head()


async def test_migrated_schema_matches_the_models(database_url: str) -> None:
    await asyncio.to_thread(upgrade, database_url)
    assert await _inspect(database_url, _schema_diffs) == []


async def test_schema_after_a_round_trip_matches_the_models(database_url: str) -> None:
    await asyncio.to_thread(upgrade, database_url)
    await asyncio.to_thread(downgrade, database_url)
    await asyncio.to_thread(upgrade, database_url)
    assert await _inspect(database_url, _schema_diffs) == []


def test_sync_callers_can_migrate_a_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'nested' / 'gateway.db'}"
    upgrade(url)
    assert (tmp_path / "nested" / "gateway.db").exists()
    downgrade(url)
    upgrade(url)
    assert asyncio.run(_inspect(url, _tables)) == MODEL_TABLES | {"alembic_version"}
