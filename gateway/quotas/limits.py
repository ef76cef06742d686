"""Limits set through the admin API and the CLI, kept in SQL beside those of policies/quotas.yaml.

Each is stored as the quotas file would write it and validated by the same code, so both ways of
setting a limit mean the same thing. Setting a limit on a scope, name and model that already has
one replaces it. Every set and remove goes through the change feed (object type ``limit``): it is
audited, raises the generation, and every replica takes it up as it does any change (this one at
once, the others by the notice or their SQL check). The request path never reads SQL for them.

A limit names what it applies to as the quota rules match it: an organization or a team by name
(team names are unique only within an organization, so one name may be several organizations'
teams), a key by prefix or id, an end user by the OpenAI ``user`` field (in every organization),
and ``*`` for each one of the scope; ``ORG/NAME`` names one organization's team or end user, and
``ORG/*`` each of its teams, end users or keys (gateway.quotas.names). ``Reach`` says where, in SQL
today, a limit applies.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.audit.actor import INTERNAL, Actor
from gateway.audit.changes import Changes, ChangeSet
from gateway.db.models import ApiKey, Organization, QuotaLimit, Team
from gateway.errors import Conflict, InvalidRequest, NotFound
from gateway.quotas.config import LimitRule, parse_rule
from gateway.quotas.names import QUALIFIED_SCOPES, needs_owner, qualified, splits

Place = tuple[uuid.UUID, uuid.UUID | None]
"""(organization id, team id or None)."""


@dataclass(frozen=True, slots=True)
class StoredLimit:
    id: uuid.UUID
    rule: LimitRule
    spec: dict[str, Any]

    def view(self) -> dict[str, Any]:
        """The limit as the audit log keeps it: the fields of ``LimitView`` (plain JSON)."""
        return {**self.spec, "id": str(self.id), "scope": self.rule.scope, "name": self.rule.name}


@dataclass(frozen=True, slots=True)
class Reach:
    """Where a limit applies: ``everywhere`` (``*``, or an end user: every organization), or the
    places of the organizations, teams and keys its name matches now (none: nothing yet)."""

    scope: str
    name: str
    everywhere: bool = False
    places: frozenset[Place] = frozenset()

    @property
    def one(self) -> Place | None:
        """The one place, for the audit entry's organization and team."""
        return next(iter(self.places)) if not self.everywhere and len(self.places) == 1 else None


Authorize = Callable[[Reach], None]
"""Raises (Forbidden, NotFound) when the one making the change may not touch a limit with this reach."""


def _anyone(_reach: Reach) -> None:
    """The CLI and internal callers act as the superuser."""


def _invalid(where: str, problem: str) -> InvalidRequest:
    return InvalidRequest(f"{where}: {problem}" if where else problem, param=where or None)


def validate(spec: Any) -> LimitRule:
    """A limit from an API client: InvalidRequest names the field, as the file's errors do."""
    return parse_rule(spec, "", lambda where, problem: _invalid(where.lstrip("."), problem))


class LimitService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], changes: Changes | None = None) -> None:
        self._sessions = sessions
        self._changes = changes or Changes(sessions)

    async def list(self) -> list[StoredLimit]:
        async with self._sessions() as session:
            rows = (await session.scalars(select(QuotaLimit).order_by(QuotaLimit.scope, QuotaLimit.name))).all()
        return [_stored(row) for row in rows]

    async def reaches(self, rules: Iterable[LimitRule]) -> tuple[Reach, ...]:
        """Each rule's reach, read in one session."""
        async with self._sessions() as session:
            return tuple([await reach_of(session, rule) for rule in rules])

    async def put(
        self,
        spec: Any,
        *,
        actor: Actor = INTERNAL,
        authorize: Authorize = _anyone,
        owner_org: uuid.UUID | None = None,
    ) -> StoredLimit:
        """Set a limit. ``owner_org``: the organization of an admin who is not the superuser; a
        team, end-user or every-key name is qualified with its name (gateway.quotas.names)."""
        if owner_org is not None and isinstance(spec, dict):
            spec = await self._owned(spec, owner_org)
        rule = validate(spec)
        stored = {key: value for key, value in spec.items() if value is not None}
        try:
            return await self._put(rule, stored, actor, authorize)
        except IntegrityError:  # the same target set at the same moment elsewhere: the other won
            raise Conflict("That limit was being set concurrently; retry.") from None

    async def _owned(self, spec: dict[str, Any], owner_org: uuid.UUID) -> dict[str, Any]:
        name = spec.get("name", "*")
        if not isinstance(name, str):
            return spec  # validation names the field
        async with self._sessions() as session:
            org_name = await session.scalar(select(Organization.name).where(Organization.id == owner_org))
            # Already qualified, with this organization or another (whose the scope check refuses).
            named = [org for org, _ in splits(name)]
            if named and await session.scalar(select(Organization.id).where(Organization.name.in_(named)).limit(1)):
                return spec
        if org_name is None or not needs_owner(str(spec.get("scope")), name, org_name):
            return spec
        return {**spec, "name": qualified(org_name, name)}

    async def _put(self, rule: LimitRule, stored: dict[str, Any], actor: Actor, authorize: Authorize) -> StoredLimit:
        async with self._changes.transaction(actor) as change:
            session = change.session
            reach = await reach_of(session, rule)
            authorize(reach)  # before anything is written; raising rolls the transaction back
            query = select(QuotaLimit).where(
                QuotaLimit.scope == rule.scope, QuotaLimit.name == rule.name, QuotaLimit.model == (rule.model or "")
            )
            row = await session.scalar(query)
            before = _stored(row).view() if row is not None else None
            row = row or QuotaLimit(scope=rule.scope, name=rule.name, model=rule.model or "")
            row.spec = stored
            session.add(row)
            await session.flush()
            limit = StoredLimit(row.id, rule, stored)
            _record(change, "limit.set", limit, reach, before=before, after=limit.view())
            return limit

    async def remove(self, limit_id: str, *, actor: Actor = INTERNAL, authorize: Authorize = _anyone) -> StoredLimit:
        try:
            parsed = uuid.UUID(limit_id)
        except ValueError:
            raise NotFound(f"No limit with id {limit_id[:64]!r}.") from None
        async with self._changes.transaction(actor) as change:
            session = change.session
            row = await session.get(QuotaLimit, parsed)
            if row is None:
                raise NotFound(f"No limit with id {limit_id!r}.")
            limit = _stored(row)
            reach = await reach_of(session, limit.rule)
            authorize(reach)
            await session.delete(row)
            _record(change, "limit.remove", limit, reach, before=limit.view(), after=None)
            return limit


def _stored(row: QuotaLimit) -> StoredLimit:
    return StoredLimit(row.id, validate(row.spec), row.spec)


def _record(
    change: ChangeSet,
    action: str,
    limit: StoredLimit,
    reach: Reach,
    *,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    org_id, team_id = reach.one or (None, None)
    change.record(
        action, "limit", limit.id, name=limit.rule.where, before=before, after=after, org_id=org_id, team_id=team_id
    )


async def reach_of(session: AsyncSession, rule: LimitRule) -> Reach:
    """Where ``rule`` applies, matched as gateway.quotas.plan matches a request's key to rules."""
    if rule.scope in QUALIFIED_SCOPES and (owned := await _qualified_reach(session, rule)) is not None:
        return owned
    if rule.name == "*" or rule.scope == "user":
        return Reach(rule.scope, rule.name, everywhere=True)
    places: set[Place]
    if rule.scope == "org":
        orgs = await session.scalars(select(Organization.id).where(Organization.name == rule.name))
        places = {(org_id, None) for org_id in orgs}
    elif rule.scope == "team":  # a bare name: every organization's team of that name
        teams = await session.execute(select(Team.org_id, Team.id).where(Team.name == rule.name))
        places = {(org_id, team_id) for org_id, team_id in teams}
    else:  # key: by prefix, or by id written as the gateway writes ids
        matches = [ApiKey.prefix == rule.name]
        if _canonical_id(rule.name):
            matches.append(ApiKey.id == uuid.UUID(rule.name))
        keys = await session.execute(select(ApiKey.org_id, ApiKey.team_id).where(or_(*matches)))
        places = {(org_id, team_id) for org_id, team_id in keys}
    return Reach(rule.scope, rule.name, places=frozenset(places))


async def _qualified_reach(session: AsyncSession, rule: LimitRule) -> Reach | None:
    """The reach of ``ORG/NAME`` (gateway.quotas.names): that organization's team, or the whole
    organization for ``*`` and an end user. None when no organization answers to a prefix of the
    name: then it is read as a bare name."""
    readings = splits(rule.name)
    if not readings:
        return None
    found = await session.execute(
        select(Organization.name, Organization.id).where(Organization.name.in_([org for org, _ in readings]))
    )
    orgs = {name: org_id for name, org_id in found.all()}
    for org_name, rest in readings:
        org_id = orgs.get(org_name)
        if org_id is None or (rule.scope == "key" and rest != "*"):
            continue
        if rule.scope != "team" or rest == "*":
            return Reach(rule.scope, rule.name, places=frozenset({(org_id, None)}))
        team_id = await session.scalar(select(Team.id).where(Team.org_id == org_id, Team.name == rest))
        # A team not made yet reaches nothing (an admin's typo is a 404, as for a key).
        return Reach(rule.scope, rule.name, places=frozenset({(org_id, team_id)} if team_id else set()))
    return None


def _canonical_id(name: str) -> bool:
    try:
        return str(uuid.UUID(name)) == name
    except ValueError:
        return False
