"""Engine and session factory for either SQLite (embedded) or PostgreSQL (production)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from gateway.errors import ConfigError
from gateway.settings import masked_url

UNUSABLE_DATABASE_ERRORS = (SQLAlchemyError, OSError)
"""What reaching a database can raise: the driver's own errors arrive wrapped by SQLAlchemy, but a
refused connection or an unknown host arrives as the bare OSError (TimeoutError is one too)."""


def create_engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # Bounded waits everywhere: a database that accepts connections but never answers must
    # turn into errors (503 on a key-cache miss, a retried usage batch), not hung requests.
    return create_async_engine(
        url,
        pool_size=5,
        max_overflow=10,
        pool_pre_ping=True,
        pool_timeout=5,
        connect_args={"timeout": 5, "command_timeout": 30},
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the CLI and the server use the same file at once; foreign keys are off by default.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[Any]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def check_connection(url: str, setting: str) -> None:
    """Connect once, so that an unusable database is a one-line start-up error, not a traceback."""
    try:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        finally:
            await engine.dispose()
    except UNUSABLE_DATABASE_ERRORS as exc:
        raise unusable_database(exc, url, setting) from None


def unusable_database(exc: BaseException, url: str, setting: str) -> ConfigError:
    """One line naming the setting, the URL (password masked) and the driver's own reason."""
    # SQLAlchemy's wrapper adds its class name and a documentation link; the driver's reason does not.
    while isinstance(exc, SQLAlchemyError) and exc.__cause__ is not None:
        exc = exc.__cause__
    reason = " ".join(str(exc).split()) or type(exc).__name__
    password = _password(url)
    if password:  # drivers do not echo passwords, but an error message is no place to bet on that
        reason = reason.replace(password, "***")
    return ConfigError(f"{setting}: cannot use the database at {masked_url(url)}: {reason}")


def _password(url: str) -> str | None:
    try:
        password = make_url(url).password
    except ValueError:  # unparseable: masked_url still hides whatever sits where a password would
        return None
    return str(password) if password else None
