"""Organizations, teams and users as managed objects (create, list, show, update, delete) and
users' admin tokens. Every write goes through the change feed, so it is audited and live.

Every operation takes the principal it is made for and checks the scope of the object it
touches (``Principal.check``), so the admin API and the CLI (the superuser) share one set of
rules: nobody outside an organization sees or touches it, a team admin reads only their team's,
and nobody gives a role above their own. A delete while anything still refers to the object is a
409 naming what does, and changes nothing. Updates take ``UNSET`` for a field left as it is.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from msgspec import UNSET, UnsetType
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.access.principal import Principal
from gateway.access.roles import Action, Role
from gateway.audit.actor import Actor
from gateway.audit.changes import Changes, ChangeSet
from gateway.db.models import AdminToken, Organization, Team, User, utcnow
from gateway.directory import lookup
from gateway.directory.rules import (
    check_description,
    check_email,
    check_grant,
    check_name,
    check_role,
    org_view,
    team_view,
    token_view,
    user_view,
)
from gateway.directory.tokens import new_token, token_prefix
from gateway.errors import Conflict, InvalidRequest
from gateway.keys.limit_names import follow_org_rename, follow_team_rename
from gateway.keys.secrets import hash_secret


@dataclass(frozen=True, slots=True)
class NewToken:
    """What ``create_token`` returns: the only time the secret exists outside the client."""

    secret: str
    token: AdminToken


def _in_org(who: Principal, action: Action, org_id: uuid.UUID) -> None:
    """A listing within an organization: the organization in scope (its rows are narrowed by
    ``team_filter`` for a team admin, who passes here for their own team's organization)."""
    who.check(action, org_id, who.team_filter)


def _refused(what: str, references: list[str]) -> Conflict:
    listed = ", ".join(references[:-1]) + " and " + references[-1] if len(references) > 1 else references[0]
    return Conflict(f"{what} is still referred to by {listed}; remove or move them first.")


class Directory:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], changes: Changes) -> None:
        self._sessions = sessions
        self._changes = changes

    # Organizations

    async def orgs(self, who: Principal) -> list[Organization]:
        who.require(Action.ORGS_READ)
        query = select(Organization).order_by(Organization.name)
        if not who.superuser:
            query = query.where(Organization.id == who.org_filter)
        async with self._sessions() as session:
            return list((await session.scalars(query)).all())

    async def org(self, who: Principal, ref: str) -> Organization:
        async with self._sessions() as session:
            row = await lookup.find_org(session, ref)
        who.check(Action.ORGS_READ, row.id)
        return row

    async def create_org(self, who: Principal, actor: Actor, name: str, description: str | None = None) -> Organization:
        who.require(Action.ORGS_CREATE)
        check_name(name)
        check_description(description)
        async with self._changes.transaction(actor) as change:
            await _free_org_name(change.session, name)
            row = Organization(name=name, description=description)
            change.session.add(row)
            await change.session.flush()
            change.record("org.create", "org", row.id, name=name, after=org_view(row), org_id=row.id)
        return row

    async def update_org(
        self,
        who: Principal,
        actor: Actor,
        ref: str,
        *,
        name: str | UnsetType = UNSET,
        description: str | UnsetType | None = UNSET,
    ) -> Organization:
        if name is not UNSET:
            check_name(name)
        if description is not UNSET:
            check_description(description)
        async with self._changes.transaction(actor) as change:
            row = await lookup.find_org(change.session, ref)
            who.check(Action.ORGS_UPDATE, row.id)
            before = org_view(row)
            if name is not UNSET and name != row.name:
                await _free_org_name(change.session, name)
                old, row.name = row.name, name
                await follow_org_rename(change, row, old)
            if description is not UNSET:
                row.description = description
            _changed(change, "org.update", "org", row.name, before, org_view(row), org_id=row.id)
        return row

    async def delete_org(self, who: Principal, actor: Actor, ref: str) -> Organization:
        async with self._changes.transaction(actor) as change:
            row = await lookup.find_org(change.session, ref)
            who.check(Action.ORGS_DELETE, row.id)
            if references := await lookup.org_references(change.session, row):
                raise _refused(f"The organization {row.name!r}", references)
            await change.session.delete(row)
            change.record("org.delete", "org", row.id, name=row.name, before=org_view(row), org_id=row.id)
        return row

    # Teams

    async def teams(self, who: Principal, org_ref: str) -> list[Team]:
        async with self._sessions() as session:
            org = await lookup.find_org(session, org_ref)
            _in_org(who, Action.TEAMS_READ, org.id)
            query = select(Team).where(Team.org_id == org.id).order_by(Team.name)
            if who.team_filter is not None:
                query = query.where(Team.id == who.team_filter)
            return list((await session.scalars(query)).all())

    async def team(self, who: Principal, org_ref: str, ref: str) -> Team:
        async with self._sessions() as session:
            row = await lookup.find_team(session, await lookup.find_org(session, org_ref), ref)
        who.check(Action.TEAMS_READ, row.org_id, row.id)
        return row

    async def create_team(
        self, who: Principal, actor: Actor, org_ref: str, name: str, description: str | None = None
    ) -> Team:
        check_name(name)
        check_description(description)
        async with self._changes.transaction(actor) as change:
            org = await lookup.find_org(change.session, org_ref)
            who.check(Action.TEAMS_WRITE, org.id)
            await _free_team_name(change.session, org, name)
            row = Team(org_id=org.id, name=name, description=description)
            change.session.add(row)
            await change.session.flush()
            change.record("team.create", "team", row.id, name=name, after=team_view(row), org_id=org.id, team_id=row.id)
        return row

    async def update_team(
        self,
        who: Principal,
        actor: Actor,
        org_ref: str,
        ref: str,
        *,
        name: str | UnsetType = UNSET,
        description: str | UnsetType | None = UNSET,
    ) -> Team:
        if name is not UNSET:
            check_name(name)
        if description is not UNSET:
            check_description(description)
        async with self._changes.transaction(actor) as change:
            org = await lookup.find_org(change.session, org_ref)
            row = await lookup.find_team(change.session, org, ref)
            who.check(Action.TEAMS_WRITE, org.id, row.id)
            before = team_view(row)
            if name is not UNSET and name != row.name:
                await _free_team_name(change.session, org, name)
                old, row.name = row.name, name
                await follow_team_rename(change, org, row, old)
            if description is not UNSET:
                row.description = description
            after = team_view(row)
            _changed(change, "team.update", "team", row.name, before, after, org_id=org.id, team_id=row.id)
        return row

    async def delete_team(self, who: Principal, actor: Actor, org_ref: str, ref: str) -> Team:
        async with self._changes.transaction(actor) as change:
            org = await lookup.find_org(change.session, org_ref)
            row = await lookup.find_team(change.session, org, ref)
            who.check(Action.TEAMS_WRITE, org.id, row.id)
            if references := await lookup.team_references(change.session, row):
                raise _refused(f"The team {row.name!r}", references)
            await change.session.delete(row)
            change.record(
                "team.delete", "team", row.id, name=row.name, before=team_view(row), org_id=org.id, team_id=row.id
            )
        return row

    # Users

    async def users(self, who: Principal, org_ref: str | None = None) -> list[User]:
        async with self._sessions() as session:
            query = select(User).order_by(User.email)
            if org_ref is not None:
                org = await lookup.find_org(session, org_ref, param="org")
                _in_org(who, Action.USERS_READ, org.id)
                query = query.where(User.org_id == org.id)
            else:
                who.require(Action.USERS_READ)
            if not who.superuser:
                query = query.where(User.org_id == who.org_filter)
            if who.team_filter is not None:
                query = query.where(User.team_id == who.team_filter)
            return list((await session.scalars(query)).all())

    async def user(self, who: Principal, ref: str) -> User:
        async with self._sessions() as session:
            row = await lookup.find_user(session, ref)
        who.check(Action.USERS_READ, row.org_id, row.team_id)
        return row

    async def create_user(
        self,
        who: Principal,
        actor: Actor,
        email: str,
        org_ref: str,
        *,
        team: str | None = None,
        role: str | None = None,
        name: str | None = None,
        disabled: bool = False,
    ) -> User:
        check_email(email)
        granted = check_role(role)
        if name is not None:
            check_name(name)
        if granted is Role.TEAM_ADMIN and team is None:
            raise InvalidRequest("A team_admin needs a 'team' (of the user's organization).", param="team")
        async with self._changes.transaction(actor) as change:
            org = await lookup.find_org(change.session, org_ref, param="org")
            team_row = await lookup.find_team(change.session, org, team, param="team") if team is not None else None
            who.check(Action.USERS_WRITE, org.id, team_row.id if team_row else None)
            check_grant(who, granted)
            await _free_email(change.session, email)
            row = User(
                email=email,
                org_id=org.id,
                team_id=team_row.id if team_row else None,
                name=name,
                role=granted.value if granted else None,
                disabled_at=utcnow() if disabled else None,
            )
            change.session.add(row)
            await change.session.flush()
            change.record(
                "user.create", "user", row.id, name=email, after=user_view(row), org_id=org.id, team_id=row.team_id
            )
        return row

    async def update_user(
        self,
        who: Principal,
        actor: Actor,
        ref: str,
        *,
        email: str | UnsetType = UNSET,
        name: str | UnsetType | None = UNSET,
        team: str | UnsetType | None = UNSET,
        role: str | UnsetType | None = UNSET,
        disabled: bool | UnsetType = UNSET,
    ) -> User:
        if email is not UNSET:
            check_email(email)
        if name is not UNSET and name is not None:
            check_name(name)
        granted = check_role(role) if not isinstance(role, UnsetType) else UNSET
        async with self._changes.transaction(actor) as change:
            session = change.session
            row = await lookup.find_user(session, ref)
            who.check(Action.USERS_WRITE, row.org_id, row.team_id)
            check_grant(who, _role_of(row))
            before = user_view(row)
            if not isinstance(granted, UnsetType):
                check_grant(who, granted)
                row.role = granted.value if granted else None
            if not isinstance(team, UnsetType):
                org = await session.get(Organization, row.org_id)
                assert org is not None  # users.org_id is a foreign key
                team_row = await lookup.find_team(session, org, team, param="team") if team is not None else None
                who.check(Action.USERS_WRITE, row.org_id, team_row.id if team_row else None)
                row.team_id = team_row.id if team_row else None
            if _role_of(row) is Role.TEAM_ADMIN and row.team_id is None:
                # Said by the request itself: bad input. Else the user's stored team (or role) is
                # what the change conflicts with.
                if granted is Role.TEAM_ADMIN and team is None:
                    raise InvalidRequest("A team_admin needs a 'team' (of the user's organization).", param="team")
                raise Conflict(f"The user {row.email!r} would be a team_admin without a team; give one.", param="team")
            if not isinstance(email, UnsetType) and email != row.email:
                await _free_email(session, email)
                row.email = email
            if not isinstance(name, UnsetType):
                row.name = name
            if not isinstance(disabled, UnsetType):
                row.disabled_at = (row.disabled_at or utcnow()) if disabled else None
            after = user_view(row)
            _changed(change, "user.update", "user", row.email, before, after, org_id=row.org_id, team_id=row.team_id)
        return row

    async def delete_user(self, who: Principal, actor: Actor, ref: str) -> User:
        """The user's admin tokens go with it (each one's deletion is audited)."""
        async with self._changes.transaction(actor) as change:
            session = change.session
            row = await lookup.find_user(session, ref)
            who.check(Action.USERS_WRITE, row.org_id, row.team_id)
            check_grant(who, _role_of(row))
            if references := await lookup.user_references(session, row):
                raise _refused(f"The user {row.email!r}", references)
            for token in (await session.scalars(select(AdminToken).where(AdminToken.user_id == row.id))).all():
                await session.delete(token)
                change.record(
                    "admin_token.delete",
                    "admin_token",
                    token.id,
                    name=token.name,
                    before=token_view(token),
                    org_id=row.org_id,
                    team_id=row.team_id,
                )
            await session.flush()  # the tokens first: they refer to the user
            await session.delete(row)
            change.record(
                "user.delete",
                "user",
                row.id,
                name=row.email,
                before=user_view(row),
                org_id=row.org_id,
                team_id=row.team_id,
            )
        return row

    # Admin tokens

    async def tokens(self, who: Principal, user_ref: str) -> list[AdminToken]:
        async with self._sessions() as session:
            user = await lookup.find_user(session, user_ref)
            who.check(Action.TOKENS_WRITE, user.org_id, user.team_id)
            query = select(AdminToken).where(AdminToken.user_id == user.id).order_by(AdminToken.created_at)
            return list((await session.scalars(query)).all())

    async def create_token(
        self, who: Principal, actor: Actor, user_ref: str, name: str, *, expires_at: datetime | None = None
    ) -> NewToken:
        """A token acting as the user, with the user's role (as it is when the token is used)."""
        check_name(name)
        if expires_at is not None and expires_at.tzinfo is None:
            raise InvalidRequest("'expires_at' needs a time zone.", param="expires_at")
        secret = new_token()
        async with self._changes.transaction(actor) as change:
            user = await lookup.find_user(change.session, user_ref)
            who.check(Action.TOKENS_WRITE, user.org_id, user.team_id)
            check_grant(who, _role_of(user))
            if user.role is None or user.disabled_at is not None:
                why = "is disabled" if user.disabled_at is not None else "has no role"
                raise Conflict(f"The user {user.email!r} {why}: an admin token of theirs could do nothing.")
            row = AdminToken(
                user_id=user.id,
                prefix=token_prefix(secret),
                secret_hash=hash_secret(secret),
                name=name,
                expires_at=expires_at,
            )
            change.session.add(row)
            await change.session.flush()
            change.record(
                "admin_token.create",
                "admin_token",
                row.id,
                name=name,
                after=token_view(row),
                org_id=user.org_id,
                team_id=user.team_id,
            )
        return NewToken(secret=secret, token=row)

    async def revoke_token(self, who: Principal, actor: Actor, user_ref: str, ref: str) -> AdminToken:
        """Revoking twice keeps the first time (and writes nothing). It holds at once: every use of
        a token reads it from SQL."""
        async with self._changes.transaction(actor) as change:
            user = await lookup.find_user(change.session, user_ref)
            who.check(Action.TOKENS_WRITE, user.org_id, user.team_id)
            row = await lookup.find_token(change.session, user, ref)
            if row.revoked_at is None:
                before = token_view(row)
                row.revoked_at = utcnow()
                change.record(
                    "admin_token.revoke",
                    "admin_token",
                    row.id,
                    name=row.name,
                    before=before,
                    after=token_view(row),
                    org_id=user.org_id,
                    team_id=user.team_id,
                )
        return row


def _role_of(user: User) -> Role | None:
    return Role(user.role) if user.role in {r.value for r in Role} else None


def _changed(
    change: ChangeSet,
    action: str,
    object_type: str,
    name: str,
    before: dict[str, Any],
    after: dict[str, Any],
    *,
    org_id: uuid.UUID,
    team_id: uuid.UUID | None = None,
) -> None:
    """An update's entry, when it changed anything (an update to the same values writes nothing)."""
    if before != after:
        change.record(
            action, object_type, str(after["id"]), name=name, before=before, after=after, org_id=org_id, team_id=team_id
        )


async def _free_org_name(session: AsyncSession, name: str) -> None:
    if await session.scalar(select(Organization.id).where(Organization.name == name)) is not None:
        raise Conflict(f"An organization named {name!r} exists already.", param="name")


async def _free_team_name(session: AsyncSession, org: Organization, name: str) -> None:
    if await session.scalar(select(Team.id).where(Team.org_id == org.id, Team.name == name)) is not None:
        raise Conflict(f"The organization {org.name!r} has a team named {name!r} already.", param="name")


async def _free_email(session: AsyncSession, email: str) -> None:
    if await session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict(f"A user with the e-mail {email!r} exists already.", param="email")
