"""Model versions and their lifecycle, through the admin API and the CLI.

A version is immutable configuration (gateway/catalog/version_spec.py) with a state:

    draft ──promote──▶ canary (share %) ──promote──▶ active ──(another promoted)──▶ retired
      │                   │    ▲ share                  ▲                              │
      └─────promote───────┼────┼────────────────────────┘◀──────── rollback ───────────┘
      └──retire──▶ retired ◀──retire

A model has at most one canary, and exactly one active version once it has been activated: the
active version is never retired directly (promote another one, or roll back). ``rollback`` makes
the version that was active before the current one active again, in one step. Illegal moves are
409 (or 400 for a bad share) and change nothing. Each move is an audit entry with the state before
and after, and is live on every replica within a second (the change feed).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.audit.actor import Actor
from gateway.audit.changes import Changes, ChangeSet
from gateway.catalog.config import ROLLOUTS, CatalogConfig, check_model_name, parse_model
from gateway.catalog.sync import activate, backend_view, plan_sync, sync_catalog
from gateway.catalog.version_spec import diff, new_version, version_config, version_state
from gateway.db.models import AuditEntry, Backend, Model, ModelVersion, utcnow
from gateway.errors import Conflict, InvalidRequest, NotFound

MIN_SHARE, MAX_SHARE = 1, 99


@dataclass(frozen=True, slots=True)
class VersionInfo:
    version: ModelVersion
    backend: str

    @property
    def config(self) -> dict[str, Any]:
        return version_config(self.version, self.backend)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    model: Model
    versions: list[VersionInfo]

    def in_state(self, state: str) -> list[VersionInfo]:
        return [v for v in self.versions if v.version.state == state]


class VersionService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], changes: Changes) -> None:
        self._sessions = sessions
        self._changes = changes

    # Reading

    async def models(self) -> list[ModelInfo]:
        async with self._sessions() as session:
            models = (await session.scalars(select(Model).order_by(Model.name))).all()
            return [await _info(session, model) for model in models]

    async def model(self, ref: str) -> ModelInfo:
        async with self._sessions() as session:
            return await _info(session, await _find_model(session, ref))

    async def version(self, ref: str, number: int) -> VersionInfo:
        found = await self.model(ref)
        return _pick(found, number)

    async def diff(self, ref: str, first: int, second: int) -> dict[str, dict[str, Any]]:
        found = await self.model(ref)
        return diff(_pick(found, first).config, _pick(found, second).config)

    async def history(self, ref: str) -> tuple[ModelInfo, list[AuditEntry]]:
        """The model's versions and every audit entry about it or them, oldest first."""
        async with self._sessions() as session:
            found = await _info(session, await _find_model(session, ref))
            ids = [str(found.model.id), *(str(v.version.id) for v in found.versions)]
            entries = (
                await session.scalars(
                    select(AuditEntry)
                    .where(AuditEntry.object_type.in_(("model", "version")), AuditEntry.object_id.in_(ids))
                    .order_by(AuditEntry.id)
                )
            ).all()
        return found, list(entries)

    # Changing

    async def create_model(self, actor: Actor, name: str, *, rollout: str = "auto") -> ModelInfo:
        if rollout not in ROLLOUTS:
            raise InvalidRequest(f"rollout: expected one of {', '.join(ROLLOUTS)}, got {rollout!r}", param="rollout")
        check_model_name(name)
        async with self._changes.transaction(actor) as change:
            if await change.session.scalar(select(Model).where(Model.name == name)) is not None:
                raise Conflict(f"A model named {name!r} exists already.", param="name")
            model = Model(id=uuid.uuid4(), name=name, source="api", rollout=rollout, active=True, created_at=utcnow())
            change.session.add(model)
            change.record("model.create", "model", model.id, name=name, after=_model_view(model))
        return ModelInfo(model, [])

    async def create_version(self, actor: Actor, ref: str, spec: dict[str, Any]) -> VersionInfo:
        """A new draft. ``spec`` is the version's configuration as the models file writes a model."""
        if not isinstance(spec, dict):
            raise InvalidRequest("Expected the version's configuration as a JSON object.")
        async with self._changes.transaction(actor) as change:
            session = change.session
            model = await _find_model(session, ref)
            backends = {b.name: b for b in (await session.scalars(select(Backend))).all()}
            named = spec.get("backend")
            if isinstance(named, str) and named.strip() and named not in backends:
                raise NotFound(f"No backend named {named[:64]!r}.", param="backend")
            config = parse_model(model.name, spec, backends)
            number = (await _max_number(session, model.id)) + 1
            backend = backends[config.backend]
            version = new_version(
                model.id, number, backend.id, config, source="api", state="draft", created_by=actor.name
            )
            session.add(version)
            after = version_config(version, backend.name) | version_state(version)
            change.record("version.create", "version", version.id, name=_label(model, version), after=after)
        return VersionInfo(version, backend.name)

    async def promote(self, actor: Actor, ref: str, number: int, *, to: str, share: int | None = None) -> ModelInfo:
        if to not in ("canary", "active"):
            raise InvalidRequest(f"to: expected 'canary' or 'active', got {to!r}", param="to")
        if to == "canary" and (share is None or not MIN_SHARE <= share <= MAX_SHARE):
            raise InvalidRequest(
                f"share: a canary takes {MIN_SHARE} to {MAX_SHARE} percent of the model's traffic, got {share!r}",
                param="share",
            )
        if to == "active" and share is not None:
            raise InvalidRequest("share: only a canary has a share; leave it out to activate.", param="share")
        async with self._changes.transaction(actor) as change:
            model, versions = await _locked(change.session, ref)
            version = _numbered(model, versions, number)
            if to == "active":
                if version.state == "active":
                    raise Conflict(f"{_label(model, version)} is already the active version.")
                activate(change, model, version, versions)
            else:
                _to_canary(change, model, versions, version, share or 0)
        return await self.model(ref)

    async def rollback(self, actor: Actor, ref: str) -> ModelInfo:
        async with self._changes.transaction(actor) as change:
            model, versions = await _locked(change.session, ref)
            current = next((v for v in versions if v.state == "active"), None)
            if current is None:
                raise Conflict(f"The model {model.name!r} has no active version to roll back from.")
            earlier = [v for v in versions if v.state == "retired" and v.deactivated_at is not None]
            if not earlier:
                raise Conflict(f"The model {model.name!r} has no earlier active version to roll back to.")
            previous = max(earlier, key=lambda v: (v.deactivated_at, v.number))
            activate(change, model, previous, versions)
        return await self.model(ref)

    async def retire(self, actor: Actor, ref: str, number: int) -> ModelInfo:
        async with self._changes.transaction(actor) as change:
            model, versions = await _locked(change.session, ref)
            version = _numbered(model, versions, number)
            if version.state == "active":
                raise Conflict(
                    f"{_label(model, version)} is the active version: promote another one or roll back instead "
                    "(a model keeps exactly one active version)."
                )
            if version.state == "retired":
                raise Conflict(f"{_label(model, version)} is already retired.")
            before = version_state(version)
            version.state, version.canary_share = "retired", None
            change.record(
                "version.retire",
                "version",
                version.id,
                name=_label(model, version),
                before=before,
                after=version_state(version),
            )
        return await self.model(ref)

    # Configuration as code

    async def sync(self, actor: Actor, config: CatalogConfig) -> list[str]:
        return await sync_catalog(self._changes, config, actor)

    async def plan(self, config: CatalogConfig) -> list[str]:
        return await plan_sync(self._sessions, config)

    async def export(self) -> dict[str, Any]:
        """What the database serves, as a models file: every backend, and each served model's
        active version. Stored secrets are not exported (an ``env:`` reference stands in)."""
        async with self._sessions() as session:
            backends = (await session.scalars(select(Backend).order_by(Backend.name))).all()
            served = (await session.scalars(select(Model).where(Model.active.is_(True)).order_by(Model.name))).all()
            models: dict[str, Any] = {}
            for model in served:
                info = await _info(session, model)
                active = info.in_state("active")
                if active:
                    entry = active[0].config
                    if model.rollout != "auto":
                        entry["rollout"] = model.rollout
                    models[model.name] = entry
        return {"backends": {b.name: _exported_backend(b) for b in backends}, "models": models}


def _to_canary(
    change: ChangeSet, model: Model, versions: list[ModelVersion], version: ModelVersion, share: int
) -> None:
    if version.state == "active":
        raise Conflict(f"{_label(model, version)} is the active version; a canary is a version beside it.")
    if not any(v.state == "active" for v in versions):
        raise Conflict(f"The model {model.name!r} has no active version for a canary to share traffic with.")
    other = next((v for v in versions if v.state == "canary" and v.id != version.id), None)
    if other is not None:
        raise Conflict(
            f"{_label(model, other)} is the model's canary already: promote, or retire it first (one canary at a time)."
        )
    if version.state == "canary" and version.canary_share == share:
        raise Conflict(f"{_label(model, version)} is already a canary at {share}%.")
    before = version_state(version)
    version.state, version.canary_share = "canary", share
    change.record(
        "version.canary",
        "version",
        version.id,
        name=_label(model, version),
        before=before,
        after=version_state(version),
    )


async def _locked(session: AsyncSession, ref: str) -> tuple[Model, list[ModelVersion]]:
    """The model and its versions, read inside the change's transaction (which already holds the
    control-plane lock, so no other change moves them meanwhile)."""
    model = await _find_model(session, ref)
    rows = (await session.scalars(select(ModelVersion).where(ModelVersion.model_id == model.id))).all()
    return model, sorted(rows, key=lambda v: v.number)


async def _find_model(session: AsyncSession, ref: str) -> Model:
    """By name, or by id (for names an URL path cannot carry)."""
    if len(ref) > 200 or "\x00" in ref:
        raise NotFound(f"No model {ref[:64]!r}.", param="model")
    model = await session.scalar(select(Model).where(Model.name == ref))
    if model is None:
        try:
            model = await session.get(Model, uuid.UUID(ref))
        except ValueError:
            model = None
    if model is None:
        raise NotFound(f"No model {ref!r}.", param="model")
    return model


async def _info(session: AsyncSession, model: Model) -> ModelInfo:
    rows = (
        await session.execute(
            select(ModelVersion, Backend.name)
            .join(Backend, Backend.id == ModelVersion.backend_id)
            .where(ModelVersion.model_id == model.id)
            .order_by(ModelVersion.number)
        )
    ).all()
    return ModelInfo(model, [VersionInfo(version, name) for version, name in rows])


async def _max_number(session: AsyncSession, model_id: uuid.UUID) -> int:
    numbers = (await session.scalars(select(ModelVersion.number).where(ModelVersion.model_id == model_id))).all()
    return max(numbers, default=0)


def _pick(found: ModelInfo, number: int) -> VersionInfo:
    for info in found.versions:
        if info.version.number == number:
            return info
    raise NotFound(f"The model {found.model.name!r} has no version {number}.", param="version")


def _numbered(model: Model, versions: list[ModelVersion], number: int) -> ModelVersion:
    for version in versions:
        if version.number == number:
            return version
    raise NotFound(f"The model {model.name!r} has no version {number}.", param="version")


def _label(model: Model, version: ModelVersion) -> str:
    return f"{model.name} v{version.number}"


def _model_view(model: Model) -> dict[str, Any]:
    return {"name": model.name, "active": model.active, "source": model.source, "rollout": model.rollout}


def _exported_backend(row: Backend) -> dict[str, Any]:
    view = backend_view(row)
    entry: dict[str, Any] = {"kind": view["kind"], "base_url": view["base_url"]}
    ref = view["credential_ref"] or ""
    if ref.startswith("env:"):
        entry["api_key_env"] = ref.removeprefix("env:")
    elif row.secret_encrypted or ref.startswith("config:"):
        # The secret itself never leaves the database (nor the file it came from): name a variable.
        entry["api_key_env"] = "GATEWAY_BACKEND_" + "".join(c if c.isalnum() else "_" for c in row.name).upper()
    settings = view["settings"]
    for name in ("timeout_seconds", "api_version", "region"):
        if settings.get(name) is not None:
            entry[name] = settings[name]
    if settings.get("entra"):
        entry.pop("api_key_env", None)
        entry["entra"] = dict(settings["entra"])
    return entry
