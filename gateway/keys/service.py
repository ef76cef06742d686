"""Key administration in SQL, shared by the CLI and the admin HTTP API."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.audit.actor import INTERNAL, Actor
from gateway.audit.changes import Changes, ChangeSet
from gateway.db.models import ApiKey, AuditEntry, Organization, Team, utcnow
from gateway.errors import Conflict, InvalidRequest
from gateway.keys.limit_names import follow_key_rotation
from gateway.keys.model import KeyInfo
from gateway.keys.owners import (
    check_models_known,
    check_text,
    find_key,
    find_member,
    get_or_create_org,
    get_or_create_team,
)
from gateway.keys.secrets import hash_secret, new_secret, visible_prefix

DEFAULT_ORG = "default"
MAX_GRACE = timedelta(days=30)
"""The longest a rotated key's old secret may keep working."""

Authorize = Callable[[uuid.UUID, "uuid.UUID | None"], None]
"""Called with a key's organization and team before a write touches it: raises (a Forbidden, say)
to refuse, which rolls the whole change back. The admin API passes its principal's scope check."""


def _anyone(org_id: uuid.UUID, team_id: uuid.UUID | None) -> None:
    """The CLI and the gateway's own code: no scope to check."""


_Models = list[str] | None  # (the class's ``list`` method hides the builtin in its annotations)

_UNSET: Any = object()
"""An ``update`` argument left out (None means clear)."""


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
        team: str | uuid.UUID | None = None,
        org: str | uuid.UUID = DEFAULT_ORG,
        user: str | None = None,
        metadata: dict[str, Any] | None = None,
        actor: Actor = INTERNAL,
        authorize: Authorize = _anyone,
    ) -> NewKey:
        """A new key of ``org`` (a name, made on first use, or an id) and ``team`` (likewise)."""
        _check_fields(name=name, owner=owner, models=models, expires_at=expires_at)
        for field, value in (("team", team), ("org", org)):
            check_text(field, value if isinstance(value, str) else None)
        secret = new_secret()
        async with self._changes.transaction(actor) as change:
            session = change.session
            organization = await get_or_create_org(change, org)
            team_row = await get_or_create_team(change, organization, team) if team else None
            authorize(organization.id, team_row.id if team_row else None)
            member = await find_member(session, organization, user) if user else None
            if models:
                await check_models_known(session, models)
            row = ApiKey(
                prefix=visible_prefix(secret),
                secret_hash=hash_secret(secret),
                name=name,
                owner=owner,
                org_id=organization.id,
                team_id=team_row.id if team_row else None,
                user_id=member.id if member else None,
                allowed_models=sorted(set(models)) if models is not None else None,
                expires_at=expires_at,
                metadata_=metadata or {},
            )
            session.add(row)
            await session.flush()
            _record(change, "key.create", row, None)
        return NewKey(secret=secret, key=row)

    async def list(
        self, *, include_revoked: bool = True, org_id: uuid.UUID | None = None, team_id: uuid.UUID | None = None
    ) -> list[ApiKey]:
        """Every key, or those of one organization (and team)."""
        async with self._sessions() as session:
            query = select(ApiKey).order_by(ApiKey.created_at)
            if not include_revoked:
                query = query.where(ApiKey.revoked_at.is_(None))
            if org_id is not None:
                query = query.where(ApiKey.org_id == org_id)
            if team_id is not None:
                query = query.where(ApiKey.team_id == team_id)
            return list((await session.scalars(query)).all())

    async def show(self, key: str, *, authorize: Authorize = _anyone) -> ApiKey:
        async with self._sessions() as session:
            row = await find_key(session, key)
            authorize(row.org_id, row.team_id)
            return row

    async def info(self, key: str) -> KeyInfo:
        """What the request path knows of a key, found by id or prefix (for the admin views)."""
        async with self._sessions() as session:
            row = await find_key(session, key)
            org = await session.get(Organization, row.org_id)
            team = await session.get(Team, row.team_id) if row.team_id else None
            return key_info(row, org.name if org else "", team.name if team else None)

    async def revoke(self, key: str, *, actor: Actor = INTERNAL, authorize: Authorize = _anyone) -> ApiKey:
        """Revoke by id or by visible prefix. Revoking twice keeps the first time (and writes nothing)."""
        async with self._changes.transaction(actor) as change:
            row = await find_key(change.session, key)
            authorize(row.org_id, row.team_id)
            if row.revoked_at is None:
                before = audit_view(row)
                row.revoked_at = utcnow()
                _record(change, "key.revoke", row, before)
            return row

    async def update(
        self,
        key: str,
        *,
        name: str = _UNSET,
        models: _Models = _UNSET,
        expires_at: datetime | None = _UNSET,
        owner: str | None = _UNSET,
        team: str | uuid.UUID | None = _UNSET,
        user: str | None = _UNSET,
        metadata: dict[str, Any] = _UNSET,
        actor: Actor = INTERNAL,
        authorize: Authorize = _anyone,
    ) -> ApiKey:
        """Change what is given (None clears models, expiry, owner, team, user). A revoked key stays revoked:
        changing it is refused, so that nothing reads as if it were in use again."""
        _check_fields(
            name=None if name is _UNSET else name,
            owner=None if owner is _UNSET else owner,
            models=None if models is _UNSET else models,
            expires_at=None if expires_at is _UNSET else expires_at,
        )
        check_text("team", team if isinstance(team, str) else None)
        async with self._changes.transaction(actor) as change:
            row = await find_key(change.session, key)
            authorize(row.org_id, row.team_id)
            _refuse_revoked(row)
            before = audit_view(row)
            org = await change.session.get(Organization, row.org_id)
            assert org is not None
            if team is not _UNSET:
                row.team_id = (await get_or_create_team(change, org, team)).id if team else None
                authorize(row.org_id, row.team_id)  # a team admin may not give a key away
            if user is not _UNSET:
                row.user_id = (await find_member(change.session, org, user)).id if user else None
            if models is not _UNSET and models:
                await check_models_known(change.session, models)
            for field, value in (("name", name), ("owner", owner), ("expires_at", expires_at), ("metadata_", metadata)):
                if value is not _UNSET:
                    setattr(row, field, value)
            if models is not _UNSET:
                row.allowed_models = sorted(set(models)) if models is not None else None
            if audit_view(row) != before:
                _record(change, "key.update", row, before)
            return row

    async def rotate(
        self, key: str, *, grace: timedelta, actor: Actor = INTERNAL, authorize: Authorize = _anyone
    ) -> NewKey:
        """A new secret for the key; the current one keeps working for ``grace`` (0: stops now).
        A secret still in an earlier rotation's grace stops now: a key has at most two."""
        if grace < timedelta(0) or grace > MAX_GRACE:
            raise InvalidRequest(f"The grace period must be between 0 and {MAX_GRACE.days} days.", param="grace")
        secret = new_secret()
        async with self._changes.transaction(actor) as change:
            row = await find_key(change.session, key)
            authorize(row.org_id, row.team_id)
            _refuse_revoked(row)
            before, old_prefix = audit_view(row), row.prefix
            row.previous_secret_hash = row.secret_hash if grace else None
            row.previous_expires_at = utcnow() + grace if grace else None
            row.secret_hash, row.prefix = hash_secret(secret), visible_prefix(secret)
            _record(change, "key.rotate", row, before)
            await follow_key_rotation(change, row, old_prefix)  # a limit on the old prefix stays on the key
        return NewKey(secret=secret, key=row)

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


def _check_fields(
    *, name: str | None, owner: str | None, models: list[str] | None, expires_at: datetime | None
) -> None:
    if name is not None and not name.strip():
        raise InvalidRequest("A key needs a non-empty name.", param="name")
    for field, value in (("name", name), ("owner", owner)):
        check_text(field, value)
    if models is not None and not models:
        raise InvalidRequest("'models' is empty: leave it out (or null) to allow every model.", param="models")
    for model in models or []:
        check_text("models", model)
    if expires_at is not None and expires_at.tzinfo is None:
        raise InvalidRequest("expires_at needs a time zone.", param="expires_at")


def _refuse_revoked(row: ApiKey) -> None:
    if row.revoked_at is not None:
        raise Conflict(f"The key {row.prefix}... is revoked; create a new one instead.", param="key_id")


def _record(change: ChangeSet, action: str, row: ApiKey, before: dict[str, Any] | None) -> None:
    change.record(
        action,
        "key",
        row.id,
        name=row.name,
        before=before,
        after=audit_view(row),
        org_id=row.org_id,
        team_id=row.team_id,
    )
