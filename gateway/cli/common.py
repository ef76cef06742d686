"""What every control-plane command shares: the database, the control plane's services, and
telling running gateways about a change."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from gateway.settings import Settings

if TYPE_CHECKING:  # imported when used: `gateway --help` should not load SQLAlchemy
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from gateway.runtime import ControlPlane


@contextlib.asynccontextmanager
async def sessions() -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """SQL sessions on a short-lived engine (migrating first in embedded mode)."""
    from gateway.db.engine import check_connection, create_engine, session_factory
    from gateway.db.migrate import upgrade_async

    settings = Settings.load()
    url, setting = settings.effective_database_url, settings.database_setting
    if settings.should_migrate:
        await upgrade_async(url, setting=setting)
    else:
        await check_connection(url, setting)
    engine = create_engine(url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def control() -> AsyncIterator[ControlPlane]:
    """The control plane's services, as a server has them. A change committed here is published
    to the running gateways (production mode); an embedded-mode server finds it by its SQL check."""
    from gateway.runtime import control_plane
    from gateway.snapshot.notices import Notices
    from gateway.vault import Vault

    settings = Settings.load()
    notices = Notices(settings.redis_url or None)
    try:
        async with sessions() as made:
            plane = control_plane(made, Vault(settings.encryption_keys))
            plane.changes.on_commit(notices.publish)
            yield plane
    finally:
        await notices.aclose()


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True, default=str))


def say(message: str) -> None:
    """What a command reports besides its result, on stderr (stdout stays parseable)."""
    print(message, file=sys.stderr)
