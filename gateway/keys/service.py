"""Key administration in SQL, shared by the CLI and the admin HTTP API."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.audit.actor import INTERNAL, Actor
from gateway.audit.changes import Changes, ChangeSet
from gateway.db.models import ApiKey, AuditEntry, Model, Organization, Team, utcnow
from gateway.errors import InvalidRequest, ModelNotFound, NotFound
from gateway.keys.model import KeyInfo
from gateway.keys.secrets import hash_secret, new_secret, visible_prefix

DEFAULT_ORG = "default"
_MODELS_NAMED = 20  # an unknown model's error lists at most this many of those served
_Named = TypeVar("_Named", Organization, Team)


@dataclass(frozen=True, slots=True)
class NewKey:
    """What ``create`` returns: the only time the secret exists outside the client."""

    secret: str
    key: ApiKey


def key_info(row: ApiKey, org_name: str = "", team_name: str | None = None, *, previous: bool = False) -> KeyInfo:
    """What the request path knows of a key; ``previous``: as its pre-rotation secret shows it."""
    expires_at = row.expires_at
    if previous and row.previous_expires_at is not None:
        expires_at = min(expires_at or row.previous_expires_at, row.previous_expires_at)
    return KeyInfo(
        id=row.id,
        prefix=row.prefix,
        name=row.name,
        org_id=row.org_id,
        team_id=row.team_id,
        allowed_models=frozenset(row.allowed_models) if row.allowed_models is not None else None,
        expires_at=expires_at,
        revoked_at=row.revoked_at,
        org_name=org_name,
        team_name=team_name,
        user_id=row.user_id,
        rotated=previous,
    )


def cache_entries(row: ApiKey, org_name: str, team_name: str | None) -> list[tuple[str, KeyInfo]]:
    """A key's entries for the key cache, by secret hash: its secret, and its previous one while
    a rotation's grace period lasts."""
    entries = [(row.secret_hash, key_info(row, org_name, team_name))]
    if row.previous_secret_hash is not None:
        entries.append((row.previous_secret_hash, key_info(row, org_name, team_name, previous=True)))
    return entries


def audit_view(row: ApiKey) -> dict[str, Any]:
    """What the audit log keeps of a key: never its secret nor a hash of it."""
    return {
        "id": str(row.id),
        "prefix": row.prefix,
        "name": row.name,
        "owner": row.owner,
        "org_id": str(row.org_id),
        "team_id": str(row.team_id) if row.team_id else None,
        "user_id": str(row.user_id) if row.user_id else None,
        "models": row.allowed_models,
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        "metadata": row.metadata_,
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
        "previous_expires_at": row.previous_expires_at.isoformat() if row.previous_expires_at else None,
    }


class KeyService:
    """Every write goes through ``changes`` with object type ``key``: audited, and the replicas
    re-read the keys it touched when they take up its generation (a revocation holds everywhere)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], changes: Changes | None = None) -> None:
        self._sessions = sessions
        self._changes = changes or Changes(sessions)

    async def create(
        self,
        name: str,
        *,
        models: list[str] | None = None,
        expires_at: datetime | None = None,
        owner: str | None = None,
        team: str | None = None,
        org: str = DEFAULT_ORG,
        metadata: dict[str, Any] | None = None,
        actor: Actor = INTERNAL,
    ) -> NewKey:
        if not name.strip():
            raise InvalidRequest("A key needs a non-empty name.", param="name")
        for field, value in (("name", name), ("owner", owner), ("team", team), ("org", org)):
            _check_text(field, value)
        if models is not None and not models:
            raise InvalidRequest("'models' is empty: leave it out to allow every model.", param="models")
        for model in models or []:
            _check_text("models", model)
        if expires_at is not None and expires_at.tzinfo is None:
            raise InvalidRequest("expires_at needs a time zone.", param="expires_at")
        secret = new_secret()
        async with self._changes.transaction(actor) as change:
            session = change.session
            if models:
                await _check_models_known(session, models)
            organization = await _get_or_create_org(change, org)
            team_row = await _get_or_create_team(change, organization, team) if team else None
            row = ApiKey(
                prefix=visible_prefix(secret),
                secret_hash=hash_secret(secret),
                name=name,
                owner=owner,
                org_id=organization.id,
                team_id=team_row.id if team_row else None,
                allowed_models=sorted(set(models)) if models is not None else None,
                expires_at=expires_at,
                metadata_=metadata or {},
            )
            session.add(row)
            await session.flush()
            change.record(
                "key.create",
                "key",
                row.id,
                name=row.name,
                after=audit_view(row),
                org_id=row.org_id,
                team_id=row.team_id,
            )
        return NewKey(secret=secret, key=row)

    async def list(self, *, include_revoked: bool = True) -> list[ApiKey]:
        async with self._sessions() as session:
            query = select(ApiKey).order_by(ApiKey.created_at)
            if not include_revoked:
                query = query.where(ApiKey.revoked_at.is_(None))
            return list((await session.scalars(query)).all())

    async def info(self, key: str) -> KeyInfo:
        """What the request path knows of a key, found by id or prefix (for the admin views)."""
        async with self._sessions() as session:
            row = await _find(session, key)
            org = await session.get(Organization, row.org_id)
            team = await session.get(Team, row.team_id) if row.team_id else None
            return key_info(row, org.name if org else "", team.name if team else None)

    async def revoke(self, key: str, *, actor: Actor = INTERNAL) -> ApiKey:
        """Revoke by id or by visible prefix. Revoking twice keeps the first time (and writes nothing)."""
        async with self._changes.transaction(actor) as change:
            row = await _find(change.session, key)
            if row.revoked_at is None:
                before = audit_view(row)
                row.revoked_at = utcnow()
                change.record(
                    "key.revoke",
                    "key",
                    row.id,
                    name=row.name,
                    before=before,
                    after=audit_view(row),
                    org_id=row.org_id,
                    team_id=row.team_id,
                )
            return row

    async def newest(self, limit: int) -> Sequence[tuple[str, KeyInfo]]:
        """The ``limit`` newest keys, revoked ones included, by secret hash: what a starting process
        caches, so that every key it knows keeps working (and every revoked one stays refused)
        should the database go away."""
        async with self._sessions() as session:
            query = (
                select(ApiKey, Organization.name, Team.name)
                .join(Organization, Organization.id == ApiKey.org_id)
                .outerjoin(Team, Team.id == ApiKey.team_id)
                .order_by(ApiKey.created_at.desc())
                .limit(limit)
            )
            rows = (await session.execute(query)).all()
        return [entry for row in reversed(rows) for entry in cache_entries(row[0], row[1], row[2])]

    async def changed_since(self, after: int, upto: int) -> Sequence[tuple[str, KeyInfo]]:
        """The cache entries of every key a change in generations (after, upto] touched: what a
        replica re-reads when it takes up those changes, so a revocation elsewhere holds here. A
        change to an organization or a team (a rename) touches its keys: they carry its name."""
        async with self._sessions() as session:
            touched = (
                select(AuditEntry.object_type, AuditEntry.object_id)
                .where(
                    AuditEntry.object_type.in_(("key", "org", "team")),
                    AuditEntry.generation > after,
                    AuditEntry.generation <= upto,
                )
                .distinct()
            )
            ids: dict[str, list[uuid.UUID]] = {"key": [], "org": [], "team": []}
            for object_type, object_id in (await session.execute(touched)).all():
                ids[object_type].append(uuid.UUID(object_id))
            if not any(ids.values()):
                return []
            query = (
                select(ApiKey, Organization.name, Team.name)
                .join(Organization, Organization.id == ApiKey.org_id)
                .outerjoin(Team, Team.id == ApiKey.team_id)
                .where(or_(ApiKey.id.in_(ids["key"]), ApiKey.org_id.in_(ids["org"]), ApiKey.team_id.in_(ids["team"])))
            )
            rows = (await session.execute(query)).all()
        return [entry for row in rows for entry in cache_entries(row[0], row[1], row[2])]

    async def lookup(self, secret_hash: str) -> KeyInfo | None:
        async with self._sessions() as session:
            query = (
                select(ApiKey, Organization.name, Team.name)
                .join(Organization, Organization.id == ApiKey.org_id)
                .outerjoin(Team, Team.id == ApiKey.team_id)
                .where(or_(ApiKey.secret_hash == secret_hash, ApiKey.previous_secret_hash == secret_hash))
            )
            found = (await session.execute(query)).first()
            if found is None:
                return None
            return key_info(found[0], found[1], found[2], previous=found[0].secret_hash != secret_hash)


def _check_text(field: str, value: str | None) -> None:
    """What every database stores as given: at most 200 characters, no NUL."""
    if value is not None and (len(value) > 200 or "\x00" in value):
        raise InvalidRequest(f"'{field}' must be at most 200 characters, without NUL.", param=field)


async def _check_models_known(session: AsyncSession, models: list[str]) -> None:
    """A key for a model the gateway does not serve would be refused on every request: say so now.
    The models are those ``policies/models.yaml`` declared when a gateway last started."""
    known = set((await session.scalars(select(Model.name).where(Model.active.is_(True)))).all())
    unknown = sorted(set(models) - known)
    if unknown:
        served = ", ".join(sorted(known)[:_MODELS_NAMED]) + (", ..." if len(known) > _MODELS_NAMED else "")
        served = served or "none yet (`gateway serve` loads them from the models file at start)"
        # Not found, as the same model is on /v1 (and the request itself is well formed).
        raise ModelNotFound(
            f"Unknown model(s) in 'models': {', '.join(repr(m) for m in unknown)}. Models served: {served}.",
            param="models",
        )


async def _find(session: AsyncSession, key: str) -> ApiKey:
    if len(key) > 64 or "\x00" in key:
        raise NotFound(f"No key with id or prefix {key[:64]!r}.")
    try:
        row = await session.get(ApiKey, uuid.UUID(key))
    except ValueError:
        rows = (await session.scalars(select(ApiKey).where(ApiKey.prefix == key))).all()
        if len(rows) > 1:
            raise InvalidRequest(f"Prefix {key!r} matches several keys; use the key id.") from None
        row = rows[0] if rows else None
    if row is None:
        raise NotFound(f"No key with id or prefix {key!r}.")
    return row


async def _get_or_create_org(change: ChangeSet, name: str) -> Organization:
    session = change.session
    org = await session.scalar(select(Organization).where(Organization.name == name))
    if org is None:
        made = await _insert_racing(session, Organization(name=name))
        if made is not None:
            change.record("org.create", "org", made.id, name=name, after={"name": name}, org_id=made.id)
        org = made or await session.scalar(select(Organization).where(Organization.name == name))
    assert org is not None
    return org


async def _get_or_create_team(change: ChangeSet, org: Organization, name: str) -> Team:
    session = change.session
    query = select(Team).where(Team.org_id == org.id, Team.name == name)
    team = await session.scalar(query)
    if team is None:
        made = await _insert_racing(session, Team(org_id=org.id, name=name))
        if made is not None:
            after = {"name": name, "org_id": str(org.id)}
            change.record("team.create", "team", made.id, name=name, after=after, org_id=org.id, team_id=made.id)
        team = made or await session.scalar(query)
    assert team is not None
    return team


async def _insert_racing(session: AsyncSession, row: _Named) -> _Named | None:
    """Insert in a savepoint; None when a concurrent request inserted the same name first."""
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:
        return None
    return row
