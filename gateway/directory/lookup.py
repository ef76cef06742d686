"""Finding the directory's objects as the API and the CLI name them, and what still refers to one.

An organization, a team (within its organization) or a user is named by its id, or else by its
name (a user: by e-mail); an admin token by its id or its visible prefix, within its user.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db.models import AdminToken, ApiKey, Organization, Team, User
from gateway.errors import InvalidRequest, NotFound

_REF_MAX = 400


def _as_id(ref: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(ref)
    except ValueError:
        return None


def _unusable(ref: str) -> bool:
    """A name no row can have (and that the database could not even compare)."""
    return not ref or len(ref) > _REF_MAX or "\x00" in ref


def _shown(ref: str) -> str:
    return repr(ref[:64])


async def find_org(session: AsyncSession, ref: str, param: str | None = None) -> Organization:
    row = None
    if not _unusable(ref):
        found_id = _as_id(ref)
        row = await session.get(Organization, found_id) if found_id else None
        row = row or await session.scalar(select(Organization).where(Organization.name == ref))
    if row is None:
        raise NotFound(f"No organization with id or name {_shown(ref)}.", param=param)
    return row


async def find_team(session: AsyncSession, org: Organization, ref: str, param: str | None = None) -> Team:
    row = None
    if not _unusable(ref):
        found_id = _as_id(ref)
        row = await session.get(Team, found_id) if found_id else None
        if row is not None and row.org_id != org.id:
            row = None
        row = row or await session.scalar(select(Team).where(Team.org_id == org.id, Team.name == ref))
    if row is None:
        raise NotFound(f"No team with id or name {_shown(ref)} in the organization {org.name!r}.", param=param)
    return row


async def find_user(session: AsyncSession, ref: str) -> User:
    row = None
    if not _unusable(ref):
        found_id = _as_id(ref)
        row = await session.get(User, found_id) if found_id else None
        row = row or await session.scalar(select(User).where(User.email == ref))
    if row is None:
        raise NotFound(f"No user with id or e-mail {_shown(ref)}.")
    return row


async def find_token(session: AsyncSession, user: User, ref: str) -> AdminToken:
    row = None
    if not _unusable(ref):
        found_id = _as_id(ref)
        row = await session.get(AdminToken, found_id) if found_id else None
        if row is not None and row.user_id != user.id:
            row = None
        if row is None:
            query = select(AdminToken).where(AdminToken.user_id == user.id, AdminToken.prefix == ref)
            rows = (await session.scalars(query)).all()
            if len(rows) > 1:
                raise InvalidRequest(f"The prefix {_shown(ref)} matches several tokens; use the token id.")
            row = rows[0] if rows else None
    if row is None:
        raise NotFound(f"No admin token with id or prefix {_shown(ref)} for the user {user.email!r}.")
    return row


async def _count(session: AsyncSession, model: Any, *where: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _some(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


async def _keys(session: AsyncSession, *where: Any) -> list[str]:
    """Keys count whether revoked or not: a revoked key's row (and its history) still names its owners."""
    total = await _count(session, ApiKey, *where)
    revoked = await _count(session, ApiKey, *where, ApiKey.revoked_at.is_not(None))
    if not total:
        return []
    return [_some(total, "API key") + (f" ({revoked} revoked)" if revoked else "")]


async def org_references(session: AsyncSession, org: Organization) -> list[str]:
    """What still refers to an organization (a delete refuses while any does)."""
    found = [
        _some(n, noun)
        for n, noun in (
            (await _count(session, Team, Team.org_id == org.id), "team"),
            (await _count(session, User, User.org_id == org.id), "user"),
        )
        if n
    ]
    return found + await _keys(session, ApiKey.org_id == org.id)


async def team_references(session: AsyncSession, team: Team) -> list[str]:
    users = await _count(session, User, User.team_id == team.id)
    return ([_some(users, "user")] if users else []) + await _keys(session, ApiKey.team_id == team.id)


async def user_references(session: AsyncSession, user: User) -> list[str]:
    return await _keys(session, ApiKey.user_id == user.id)
