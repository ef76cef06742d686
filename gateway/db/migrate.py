"""Run the alembic migrations programmatically (``gateway migrate`` and embedded start-up)."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import sys
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from gateway.db.engine import UNUSABLE_DATABASE_ERRORS, unusable_database
from gateway.errors import ConfigError


def migrations_dir() -> Path:
    """The repository's migrations/ (checkout or editable install), else the wheel's copy."""
    checkout = Path(__file__).resolve().parents[2] / "migrations"
    if checkout.is_dir():
        return checkout
    installed = Path(sys.prefix) / "share" / "gateway" / "migrations"
    if installed.is_dir():
        return installed
    raise ConfigError(f"cannot find the database migrations (looked in {checkout} and {installed})")


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    # ConfigParser interpolation would choke on '%' in passwords.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head", *, setting: str = "GATEWAY_DATABASE_URL") -> None:
    """Migrate to ``revision``; a database that cannot be reached is a ConfigError naming ``setting``."""
    try:
        with _sqlite_file_lock(database_url):
            command.upgrade(alembic_config(database_url), revision)
    except UNUSABLE_DATABASE_ERRORS as exc:
        raise unusable_database(exc, database_url, setting) from None


@contextlib.contextmanager
def _sqlite_file_lock(database_url: str) -> Iterator[None]:
    """Worker processes sharing one SQLite file migrate one at a time (PostgreSQL locks in env.py)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        yield
        return
    lock_path = Path(url.database).with_name(Path(url.database).name + ".migrate.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)


async def upgrade_async(database_url: str, *, setting: str = "GATEWAY_DATABASE_URL") -> None:
    # alembic's env.py drives its own event loop, so run it on a worker thread.
    await asyncio.to_thread(upgrade, database_url, setting=setting)
