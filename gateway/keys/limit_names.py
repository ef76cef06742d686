"""Stored limits follow what they name: a renamed organization or team, a rotated key.

Limits name what they count (gateway.quotas.names): an organization by its name, one
organization's team, end users or keys as ``ORG/NAME`` or ``ORG/*``. A rename would silently end
them, so the rename rewrites those names in the same transaction, each rewrite audited as a
limit change. A bare team name is every organization's, so it is left as it is; so are the
quotas file's limits (the file is changed by editing it). A key named by its visible prefix
(which a rotation changes) is renamed to its id, which does not change.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from gateway.audit.changes import ChangeSet
from gateway.db.models import ApiKey, Organization, QuotaLimit, Team
from gateway.errors import Conflict

_SEPARATOR = "/"  # as gateway.quotas.names writes them (a layer above: not imported here)


async def follow_org_rename(change: ChangeSet, org: Organization, old: str) -> None:
    rows = (await change.session.scalars(select(QuotaLimit))).all()
    for row in rows:
        if row.scope == "org" and row.name == old:
            await _rename(change, row, org.name, org)
        elif row.scope != "org" and row.name.startswith(old + _SEPARATOR):
            await _rename(change, row, org.name + row.name[len(old) :], org)


async def follow_team_rename(change: ChangeSet, org: Organization, team: Team, old: str) -> None:
    name = org.name + _SEPARATOR + old
    rows = (await change.session.scalars(select(QuotaLimit).where(QuotaLimit.scope == "team"))).all()
    for row in rows:
        if row.name == name:
            await _rename(change, row, org.name + _SEPARATOR + team.name, org, team)


async def follow_key_rotation(change: ChangeSet, key: ApiKey, old_prefix: str) -> None:
    query = select(QuotaLimit).where(QuotaLimit.scope == "key", QuotaLimit.name == old_prefix)
    org = await change.session.get(Organization, key.org_id)
    assert org is not None
    for row in (await change.session.scalars(query)).all():
        await _rename(change, row, str(key.id), org, key.team_id)


async def _rename(
    change: ChangeSet, row: QuotaLimit, name: str, org: Organization, team: Team | uuid.UUID | None = None
) -> None:
    taken = await change.session.scalar(
        select(QuotaLimit.id).where(
            QuotaLimit.scope == row.scope, QuotaLimit.name == name, QuotaLimit.model == row.model
        )
    )
    if taken is not None:
        raise Conflict(
            f"A {row.scope} limit on {name!r} exists already: the rename would make two of the limit on "
            f"{row.name!r}. Remove one first.",
            param="name",
        )
    before = _view(row)
    row.name, row.spec = name, {**row.spec, "name": name}
    change.record(
        "limit.set",
        "limit",
        row.id,
        name=f"{row.scope} {name}" + (f", model {row.model}" if row.model else ""),
        before=before,
        after=_view(row),
        org_id=org.id,
        team_id=team.id if isinstance(team, Team) else team,
    )


def _view(row: QuotaLimit) -> dict[str, Any]:
    """As gateway.quotas.limits.StoredLimit.view writes a limit."""
    return {**row.spec, "id": str(row.id), "scope": row.scope, "name": row.name}
