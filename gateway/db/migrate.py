"""Run the alembic migrations programmatically (``gateway migrate`` and embedded start-up)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config

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


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)


async def upgrade_async(database_url: str) -> None:
    # alembic's env.py drives its own event loop, so run it on a worker thread.
    await asyncio.to_thread(upgrade, database_url)
