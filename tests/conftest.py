from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from harness import POSTGRES_URL, Gateway, running_gateway

# Bedrock requests are signed with the standard AWS credential chain; the fake checks the header.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "AKIDTESTONLY")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test-secret-access-key")
# The client secret the Azure backend configured with Entra ID sends to the fake token endpoint.
os.environ.setdefault("GATEWAY_TEST_ENTRA_SECRET", "entra-client-secret-do-not-leak")
from leaks import watch_environment, watch_logs
from sqlalchemy import text

from gateway.db.engine import create_engine

LAST = "test_secrets_never_leak.py"


def pytest_configure(config: pytest.Config) -> None:
    watch_environment()
    watch_logs()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The leak check reads what the rest of the suite produced: it runs last."""
    items.sort(key=lambda item: item.path.name == LAST)


async def _reset_postgres() -> None:
    """Start each session from an empty schema so migrations run from scratch."""
    engine = create_engine(POSTGRES_URL)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


@pytest.fixture(scope="session", params=["embedded", "postgres"])
async def gateway(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    """The gateway in embedded mode (SQLite) and in production mode (PostgreSQL and Redis)."""
    mode: str = request.param
    if mode == "postgres":
        await _reset_postgres()
    tmp: Path = tmp_path_factory.mktemp(mode)
    async with running_gateway(mode, tmp) as gw:
        yield gw


@pytest.fixture(scope="session")
async def key(gateway: Gateway) -> str:
    return await gateway.create_key("suite")


@pytest.fixture(autouse=True)
def _clear_upstream(request: pytest.FixtureRequest) -> None:
    if "gateway" in request.fixturenames:
        request.getfixturevalue("gateway").upstream.clear_requests()
