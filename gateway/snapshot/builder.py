"""Builds the runtime snapshot from the control-plane database, and keeps it fresh.

At start the models file is synced into SQL; every snapshot after that is read from SQL: the
active models' current versions, and the limits set through the API or the CLI. A rebuild runs
after a change made through this process (at once) and every ``refresh_seconds`` (changes made
elsewhere). When SQL cannot be read, the snapshot in force stays, so the gateway keeps serving
what it knew: only changes wait for the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.catalog.config import CatalogConfig
from gateway.catalog.registry import ANONYMOUS, Catalog, Credentials
from gateway.catalog.sync import load_catalog, sync_catalog
from gateway.providers.credentials import CredentialProviders
from gateway.quotas.limits import LimitService
from gateway.quotas.seed import LedgerSpend
from gateway.quotas.service import Quotas
from gateway.snapshot.state import LiveSnapshot, Snapshot

log = logging.getLogger(__name__)


class SnapshotBuilder:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        catalog_config: CatalogConfig,
        credentials: CredentialProviders,
        limits: LimitService,
        quotas: Quotas,
        *,
        refresh_seconds: float,
    ) -> None:
        self._sessions = sessions
        self._config = catalog_config
        self._credentials = credentials
        self._limits = limits
        self._quotas = quotas
        self._ledger = LedgerSpend(sessions)
        self._refresh_seconds = refresh_seconds
        self._generation = 0
        self._lock = asyncio.Lock()
        self._live: LiveSnapshot | None = None
        self._refresher: asyncio.Task[None] | None = None
        self.failures = 0
        """Rebuilds that could not read SQL (the snapshot in force stayed)."""

    @property
    def live(self) -> LiveSnapshot:
        assert self._live is not None, "start() first"
        return self._live

    async def start(self) -> LiveSnapshot:
        """Sync the models file into SQL and build the first snapshot; then keep it fresh."""
        await sync_catalog(self._sessions, self._config)
        first = await self._build()
        await self._credentials.start()  # the first Entra ID tokens, before the first request
        self._live = LiveSnapshot(first)
        self._refresher = asyncio.create_task(self._refresh_forever(), name="snapshot-refresh")
        return self._live

    async def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None

    async def reload(self) -> Snapshot:
        """Rebuild from SQL now and swap the result in (after a change through this process)."""
        async with self._lock:  # one rebuild at a time: each reads SQL after the one before it
            snapshot = await self._build()
            self.live.swap(snapshot)
        return snapshot

    async def _build(self) -> Snapshot:
        catalog = self._presented(await load_catalog(self._sessions, self._provider))
        stored = tuple(limit.rule for limit in await self._limits.list())
        limits = self._quotas.rules(stored)
        await self._quotas.prepare(limits, self._ledger)  # budgets new here start from the ledger's spend
        self._generation += 1
        return Snapshot(self._generation, datetime.now(UTC), catalog, limits)

    def _presented(self, catalog: Catalog) -> Catalog:
        """How replies name a model is presentation, not part of its version: it comes from the file."""
        shown = {name for name, spec in self._config.models.items() if spec.reveal_upstream_model}
        if not shown & set(catalog.routes):
            return catalog
        routes = {
            name: dataclasses.replace(route, reveal_upstream_model=True) if name in shown else route
            for name, route in catalog.routes.items()
        }
        return Catalog(routes=routes)

    def _provider(self, backend: str) -> Credentials:
        spec = self._config.backends.get(backend)
        # A backend no longer in the models file serves no active model; it gets no credentials.
        return self._credentials.for_backend(spec) if spec is not None else ANONYMOUS

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_seconds)
            try:
                await self.reload()
            except Exception as exc:  # SQL away: keep serving the snapshot in force
                self.failures += 1
                log.warning(
                    "runtime snapshot not rebuilt (%s); keeping generation %d",
                    type(exc).__name__,
                    self.live.current.generation,
                )
