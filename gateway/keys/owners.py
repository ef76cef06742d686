"""What key writes share: finding a key, the organization and team it belongs to (made on first
use), and the checks on what a key may name."""

from __future__ import annotations

import uuid
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.audit.changes import ChangeSet
from gateway.db.models import ApiKey, Model, Organization, Team, User
from gateway.errors import InvalidRequest, ModelNotFound, NotFound

_MODELS_NAMED = 20  # an unknown model's error lists at most this many of those served
_Named = TypeVar("_Named", Organization, Team)


def check_text(field: str, value: str | None) -> None:
    """What every database stores as given: at most 200 characters, no NUL."""
    if value is not None and (len(value) > 200 or "\x00" in value):
        raise InvalidRequest(f"'{field}' must be at most 200 characters, without NUL.", param=field)


async def check_models_known(session: AsyncSession, models: list[str]) -> None:
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


async def find_key(session: AsyncSession, key: str) -> ApiKey:
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


async def get_or_create_org(change: ChangeSet, name: str | uuid.UUID) -> Organization:
    """An organization by id (it must exist), or by name (made on first use)."""
    session = change.session
    if isinstance(name, uuid.UUID):
        found = await session.get(Organization, name)
        if found is None:
            raise NotFound(f"No organization with id {name}.", param="org")
        return found
    org = await session.scalar(select(Organization).where(Organization.name == name))
    if org is None:
        made = await _insert_racing(session, Organization(name=name))
        if made is not None:
            change.record("org.create", "org", made.id, name=name, after={"name": name}, org_id=made.id)
        org = made or await session.scalar(select(Organization).where(Organization.name == name))
    assert org is not None
    return org


async def get_or_create_team(change: ChangeSet, org: Organization, name: str | uuid.UUID) -> Team:
    """A team of ``org`` by id (it must exist there), or by name (made on first use)."""
    session = change.session
    if isinstance(name, uuid.UUID):
        found = await session.get(Team, name)
        if found is None or found.org_id != org.id:
            raise NotFound(f"No team with id {name} in organization {org.name!r}.", param="team")
        return found
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


async def find_member(session: AsyncSession, org: Organization, ref: str) -> User:
    """The user a key belongs to, by id or e-mail: one of the key's organization."""
    check_text("user", ref)
    row = None
    try:
        row = await session.get(User, uuid.UUID(ref))
    except ValueError:
        row = await session.scalar(select(User).where(User.email == ref))
    if row is None or row.org_id != org.id:
        raise NotFound(f"No user {ref[:64]!r} in organization {org.name!r}.", param="user")
    return row
