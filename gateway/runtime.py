"""Everything a running gateway holds, built once at start-up and closed at shutdown.

This is the only owner of long-lived state (engine, caches, clients, the usage writer); it lives
on ``app.state.runtime``, never in a module global.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gateway.audit.changes import Changes
from gateway.audit.log import AuditLog
from gateway.catalog.backends import BackendService
from gateway.catalog.config import load_catalog_config
from gateway.catalog.versions import VersionService
from gateway.db.engine import create_engine, session_factory
from gateway.db.migrate import upgrade_async
from gateway.directory.service import Directory
from gateway.keys.auth import Authenticator
from gateway.keys.service import KeyService
from gateway.ledger.writer import UsageWriter
from gateway.providers.credentials import CredentialProviders
from gateway.providers.registry import adapters
from gateway.proxy.pipeline import Pipeline
from gateway.quotas.config import load_quota_config
from gateway.quotas.limits import LimitService
from gateway.quotas.service import Quotas
from gateway.settings import Settings
from gateway.snapshot.builder import SnapshotBuilder
from gateway.snapshot.notices import Notices
from gateway.snapshot.state import LiveSnapshot
from gateway.upstream.client import Upstream
from gateway.vault import Vault

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ControlPlane:
    """The control plane's services, one per domain; every write among them goes through
    ``changes`` (audited, generation raised, replicas told). The CLI builds the same set."""

    changes: Changes
    keys: KeyService
    limits: LimitService
    directory: Directory
    backends: BackendService
    versions: VersionService
    audit: AuditLog


def control_plane(sessions: async_sessionmaker[AsyncSession], vault: Vault) -> ControlPlane:
    changes = Changes(sessions)
    return ControlPlane(
        changes=changes,
        keys=KeyService(sessions, changes),
        limits=LimitService(sessions, changes),
        directory=Directory(sessions, changes),
        backends=BackendService(sessions, changes, vault),
        versions=VersionService(sessions, changes),
        audit=AuditLog(sessions),
    )


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    control: ControlPlane
    keys: KeyService
    auth: Authenticator
    pipeline: Pipeline
    ledger: UsageWriter
    upstream: Upstream
    quotas: Quotas
    limits: LimitService
    snapshots: SnapshotBuilder

    @property
    def live(self) -> LiveSnapshot:
        return self.snapshots.live

    async def reload(self) -> None:
        """Rebuild the snapshot now (changes through the change feed do this themselves)."""
        await self.snapshots.reload()


@contextlib.asynccontextmanager
async def open_runtime(settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> AsyncIterator[Runtime]:
    url = settings.effective_database_url
    if settings.should_migrate:
        await upgrade_async(url, setting=settings.database_setting)
    engine = create_engine(url)
    sessions = session_factory(engine)
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(engine.dispose)
        vault = Vault(settings.encryption_keys)
        control = control_plane(sessions, vault)
        keys, limits = control.keys, control.limits
        auth = Authenticator(
            keys.lookup, ttl_seconds=settings.key_cache_ttl_seconds, max_entries=settings.key_cache_size
        )
        auth.warm(await keys.newest(settings.key_cache_size))
        upstream = Upstream(settings, transport)
        stack.push_async_callback(upstream.aclose)
        ledger = UsageWriter(
            engine,
            batch_size=settings.usage_batch_size,
            flush_interval=settings.usage_flush_interval_ms / 1000,
            max_pending=settings.usage_queue_size,
            spill_file=Path(settings.data_dir) / "usage-spill.jsonl",
        )
        await ledger.start()
        stack.push_async_callback(ledger.stop)
        quotas = Quotas(
            load_quota_config(settings.quotas_file),
            settings.redis_url or None,
            # A request that never settles (its replica died) frees its concurrency slot after this;
            # a request running longer (a stream of hours) loses its slot then.
            lease_seconds=max(settings.upstream_timeout_seconds + 60, 3600),
            upstream=upstream,
        )
        await quotas.start()
        stack.push_async_callback(quotas.stop)
        credentials = CredentialProviders(upstream)
        stack.push_async_callback(credentials.stop)
        snapshots = SnapshotBuilder(
            sessions,
            load_catalog_config(settings.models_file),
            credentials,
            vault,
            limits,
            quotas,
            changes=control.changes,
            keys=keys,
            auth=auth,
            notices=Notices(settings.redis_url or None),
            refresh_seconds=settings.quota_refresh_seconds,
            check_seconds=settings.change_check_seconds,
        )
        live = await snapshots.start()
        stack.push_async_callback(snapshots.stop)
        pipeline = Pipeline(
            auth=auth,
            live=live,
            upstream=upstream,
            adapters=adapters(),
            ledger=ledger,
            quotas=quotas,
            max_upload_bytes=settings.max_upload_bytes,
            max_concurrent_uploads=settings.max_concurrent_uploads,
            upload_idle_seconds=settings.upload_idle_timeout_seconds,
            refuse_unpriced=settings.unpriced_models == "refuse",
        )
        log.info(
            "gateway ready: %d models, database %s", len(live.current.catalog.routes), engine.url.render_as_string()
        )
        yield Runtime(
            settings, engine, sessions, control, keys, auth, pipeline, ledger, upstream, quotas, limits, snapshots
        )
