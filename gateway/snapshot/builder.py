"""Builds the runtime snapshot from the control-plane database, and keeps it current.

At start the models file is synced into SQL; every snapshot after that is read from SQL: each
served model's active version (and canary), the backends with their credentials, and the limits
set through the API or the CLI. A snapshot is rebuilt
- at once after a change made through this process (``changed``, the change feed's listener),
- when another replica's notice names a newer generation (Redis, production mode),
- when the generation in SQL, read every ``check_seconds``, is newer than the snapshot's (the
  safety net for a missed notice, and how the CLI's changes reach an embedded-mode server),
- and every ``refresh_seconds`` regardless (budgets seeded from the ledger).
Keys that a change touched are re-read into the key cache in the same step. When SQL cannot be
read, the snapshot in force stays, so the gateway keeps serving what it knew.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.audit.changes import Changes, current_generation
from gateway.catalog.backend_rows import backend_config
from gateway.catalog.config import CatalogConfig
from gateway.catalog.load import load_catalog
from gateway.catalog.registry import ANONYMOUS, Credentials
from gateway.catalog.sync import sync_catalog
from gateway.db.models import Backend
from gateway.errors import ConfigError
from gateway.keys.auth import Authenticator
from gateway.keys.service import KeyService
from gateway.providers.credentials import CredentialProviders
from gateway.quotas.limits import LimitService
from gateway.quotas.seed import LedgerSpend
from gateway.quotas.service import Quotas
from gateway.snapshot.notices import Notices
from gateway.snapshot.state import LiveSnapshot, Snapshot
from gateway.vault import Vault, VaultError

log = logging.getLogger(__name__)


class SnapshotBuilder:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        catalog_config: CatalogConfig,
        credentials: CredentialProviders,
        vault: Vault,
        limits: LimitService,
        quotas: Quotas,
        *,
        changes: Changes,
        keys: KeyService,
        auth: Authenticator,
        notices: Notices,
        refresh_seconds: float,
        check_seconds: float,
    ) -> None:
        self._sessions = sessions
        self._config = catalog_config
        self._credentials = credentials
        self._vault = vault
        self._limits = limits
        self._quotas = quotas
        self._changes = changes
        self._keys = keys
        self._auth = auth
        self._notices = notices
        self._ledger = LedgerSpend(sessions)
        self._refresh_seconds = refresh_seconds
        self._check_seconds = check_seconds
        self._built: int | None = None
        """The generation the newest snapshot holds (None before the first)."""
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
        """Sync the models file into SQL and build the first snapshot; then keep it current."""
        synced = await sync_catalog(self._changes, self._config)
        first = await self._build(await current_generation(self._sessions))
        if synced:  # the file changed something: the replicas already running take it up now
            await self._notices.publish(first.generation)
        await self._credentials.start()  # the first Entra ID tokens, before the first request
        self._live = LiveSnapshot(first)
        self._changes.on_commit(self.changed)
        self._notices.listen(self._noticed)
        self._refresher = asyncio.create_task(self._check_forever(), name="snapshot-refresh")
        return self._live

    async def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None
        await self._notices.aclose()

    async def changed(self, generation: int) -> None:
        """A change committed through this process: take it up now, then tell the other replicas."""
        await self.reload(generation)
        await self._notices.publish(generation)

    async def reload(self, generation: int | None = None) -> Snapshot:
        """Rebuild from SQL now and swap the result in; with ``generation``, only if the snapshot in
        force is older than it (notices for changes already taken up cost nothing)."""
        async with self._lock:  # one rebuild at a time: each reads SQL after the one before it
            if generation is not None and self._built is not None and generation <= self._built:
                return self.live.current
            snapshot = await self._build(await current_generation(self._sessions))
            self.live.swap(snapshot)
        return snapshot

    async def _noticed(self, generation: int) -> None:
        if self._built is None or generation > self._built:
            try:
                await self.reload(generation)
            except Exception as exc:  # SQL away: the periodic check retries
                self._failed(exc)

    async def _build(self, generation: int) -> Snapshot:
        """Everything is read after ``generation`` was, so the snapshot holds at least its changes."""
        catalog = await load_catalog(self._sessions, self._provider, self._config)
        stored = tuple(limit.rule for limit in await self._limits.list())
        limits = self._quotas.rules(stored)
        await self._quotas.prepare(limits, self._ledger)  # budgets new here start from the ledger's spend
        if self._built is not None and generation > self._built:
            self._auth.refresh(await self._keys.changed_since(self._built, generation))
        self._built = generation if self._built is None else max(self._built, generation)
        number = self._live.current.number + 1 if self._live is not None else 1
        return Snapshot(number, generation, datetime.now(UTC), catalog, limits)

    def _provider(self, row: Backend) -> Credentials:
        if row.source == "file":
            spec = self._config.backends.get(row.name)
            # A backend gone from the models file serves no file model; it gets no credentials.
            return self._credentials.for_backend(spec) if spec is not None else ANONYMOUS
        try:
            return self._credentials.for_backend(backend_config(row, self._vault))
        except (VaultError, ConfigError) as exc:  # neither message holds the secret
            log.warning("backend %r: its stored secret is unusable (%s)", row.name, exc.message)
            return self._credentials.unusable(row.name, exc.message)

    async def _check_forever(self) -> None:
        last_full = time.monotonic()
        while True:
            await asyncio.sleep(self._check_seconds)
            try:
                due = time.monotonic() - last_full >= self._refresh_seconds
                if due or await current_generation(self._sessions) > (self._built or 0):
                    await self.reload()
                    last_full = time.monotonic()
            except Exception as exc:  # SQL away: keep serving the snapshot in force
                self._failed(exc)

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        log.warning(
            "runtime snapshot not rebuilt (%s); keeping generation %d",
            type(exc).__name__,
            self.live.current.generation,
        )
