"""Configuration as code: sync ``policies/models.yaml`` into the control plane.

For each model in the file, the newest version the file made is compared with the file's
configuration. When they differ, a new immutable version is made and activated (the active one
retired), or made a draft when the model says ``rollout: manual``. A version made through the API,
or a rollback, is left alone until the file itself changes, so a restart never undoes them. A
file-managed model gone from the file stops being served. Backends are upserted by name: a
backend the file declares is the file's (``source: file``; the admin API refuses to change or
delete it), even one made through the API before under that name, whose stored secret is then
dropped for the file's credential (audited). Backends made through the API and not named in the
file are left alone.
Every step is an audit entry of the ``sync`` source; ``plan_sync`` runs the same steps in a
transaction it rolls back, for ``gateway models sync --dry-run``.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.audit.actor import SYNC, Actor
from gateway.audit.changes import Changes, ChangeSet
from gateway.catalog.backend_rows import masked_secret
from gateway.catalog.config import BackendConfig, CatalogConfig, ModelConfig
from gateway.catalog.version_spec import new_version, version_config, version_hash, version_state
from gateway.db.models import Backend, Model, ModelVersion, utcnow


async def sync_catalog(changes: Changes, config: CatalogConfig, actor: Actor = SYNC) -> list[str]:
    """Apply the file; returns the steps taken. Replicas starting at once: the loser retries."""
    for attempt in range(3):
        try:
            async with changes.transaction(actor) as change:
                return await _sync_once(change, config)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def plan_sync(sessions: async_sessionmaker[AsyncSession], config: CatalogConfig) -> list[str]:
    """The steps ``sync_catalog`` would take, with nothing changed."""
    async with sessions() as session:
        transaction = await session.begin()
        try:
            return await _sync_once(ChangeSet(session, SYNC), config)
        finally:
            await transaction.rollback()


async def _sync_once(change: ChangeSet, config: CatalogConfig) -> list[str]:
    session, steps = change.session, list[str]()
    backends = {b.name: b for b in (await session.scalars(select(Backend))).all()}
    for backend_spec in config.backends.values():
        backends[backend_spec.name] = _upsert_backend(change, backends.get(backend_spec.name), backend_spec, steps)
    await session.flush()
    models = {m.name: m for m in (await session.scalars(select(Model))).all()}
    for spec in config.models.values():
        model = models.get(spec.name)
        if model is None:
            model = Model(id=uuid.uuid4(), name=spec.name, source="file", rollout=spec.rollout)
            session.add(model)
            await session.flush()
            change.record("model.create", "model", model.id, name=model.name, after=_model_view(model))
            steps.append(f"create model {spec.name}")
        elif not model.active or model.source != "file" or model.rollout != spec.rollout:
            before = _model_view(model)
            model.active, model.source, model.rollout = True, "file", spec.rollout
            change.record("model.update", "model", model.id, name=model.name, before=before, after=_model_view(model))
            steps.append(f"serve model {spec.name} from the file (rollout {spec.rollout})")
        await _sync_version(change, model, spec, backends[spec.backend], steps)
    for name, model in models.items():
        if name not in config.models and model.source == "file" and model.active:
            before = _model_view(model)
            model.active = False
            change.record("model.update", "model", model.id, name=name, before=before, after=_model_view(model))
            steps.append(f"stop serving model {name} (gone from the file)")
    await session.flush()
    return steps


def _model_view(model: Model) -> dict[str, Any]:
    return {"name": model.name, "active": model.active, "source": model.source, "rollout": model.rollout}


def backend_settings(spec: BackendConfig) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "timeout_seconds": spec.timeout_seconds,
        "api_version": spec.api_version,
        "region": spec.region,
    }
    if spec.entra is not None:
        settings["entra"] = {
            "tenant_id": spec.entra.tenant_id,
            "client_id": spec.entra.client_id,
            "client_secret_env": spec.entra.client_secret_env,
            "authority": spec.entra.authority,
            "scope": spec.entra.scope,
        }
    return settings


def backend_view(row: Backend) -> dict[str, Any]:
    """A backend as the audit log and the admin API show it: the secret masked, never whole."""
    return {
        "name": row.name,
        "kind": row.kind,
        "base_url": row.base_url,
        "credential_ref": row.credential_ref,
        "secret": masked_secret(row),
        "settings": dict(row.settings or {}),
        "source": row.source,
    }


def _upsert_backend(change: ChangeSet, row: Backend | None, spec: BackendConfig, steps: list[str]) -> Backend:
    before = backend_view(row) if row is not None else None
    row = row or Backend(id=uuid.uuid4(), name=spec.name)
    row.kind, row.base_url, row.credential_ref = spec.kind, spec.base_url, spec.credential_ref
    row.settings, row.source = backend_settings(spec), "file"
    row.secret_encrypted = row.secret_hint = None  # the file's credential is the file's
    after = backend_view(row)
    if before != after:
        change.session.add(row)
        action = "backend.create" if before is None else "backend.update"
        change.record(action, "backend", row.id, name=row.name, before=before, after=after)
        steps.append(f"{action.split('.')[1]} backend {spec.name}")
    return row


async def _sync_version(change: ChangeSet, model: Model, spec: ModelConfig, backend: Backend, steps: list[str]) -> None:
    session = change.session
    versions = list((await session.scalars(select(ModelVersion).where(ModelVersion.model_id == model.id))).all())
    from_file = [v for v in versions if v.source == "file"]
    digest = version_hash(spec)
    if from_file and max(from_file, key=lambda v: v.number).config_hash == digest:
        return  # unchanged since the last sync (a rollback or an API version made since stays)
    if any(v.state == "active" and v.config_hash == digest for v in versions):
        return  # the file asks for what is served (an exported file, with a manual rollout's draft pending)
    number = max((v.number for v in versions), default=0) + 1
    manual = spec.rollout == "manual" and any(v.state == "active" for v in versions)
    version = new_version(
        model.id, number, backend.id, spec, source="file", state="draft", created_by=change.actor.name
    )
    session.add(version)
    await session.flush()
    config = version_config(version, backend.name)
    change.record("version.create", "version", version.id, name=f"{model.name} v{number}", after=config)
    if manual:
        steps.append(f"create version {model.name} v{number} as a draft (rollout: manual)")
        return
    retired = activate(change, model, version, versions)
    retired_note = f" (v{retired} retired)" if retired else ""
    steps.append(f"create version {model.name} v{number} and activate it{retired_note}")


def activate(change: ChangeSet, model: Model, version: ModelVersion, versions: list[ModelVersion]) -> int | None:
    """Make ``version`` the model's one active version; the one it replaces is retired (and is what
    a rollback restores). Returns the retired version's number."""
    now, retired = utcnow(), None
    for other in versions:
        if other.state == "active" and other.id != version.id:
            before = version_state(other)
            other.state, other.deactivated_at, retired = "retired", now, other.number
            change.record(
                "version.retire",
                "version",
                other.id,
                name=f"{model.name} v{other.number}",
                before=before,
                after=version_state(other),
            )
    before = version_state(version)
    version.state, version.canary_share, version.activated_at = "active", None, now
    change.record(
        "version.activate",
        "version",
        version.id,
        name=f"{model.name} v{version.number}",
        before=before,
        after=version_state(version),
    )
    return retired
