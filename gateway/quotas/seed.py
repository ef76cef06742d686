"""A budget that comes into force mid-period starts from the spend the usage ledger already holds
for that period: setting one, or restarting, never forgives what was spent.

When: as the runtime snapshot is built (at start, and when a limit is set through the API or the
CLI, or reaches this replica in its refresh), never on the request path; only for budgets new to
this process. A period that rolls over later starts from zero, counted as requests run.

How much: one GROUP BY query per budget over ``usage_records`` in its current period (bounds in
the quotas file's time zone), for the org, team or key it names, or each of them for ``"*"``.
End users are not in the ledger (it has no ``user`` column): ``scope: user`` budgets start at zero.

Once: each counter is *raised to* the ledger's sum, atomically in the store, never added to. Seeding
again (another replica starting, a restart, the same limit set again) leaves a counter that holds
that spend as it is, and rebuilds one that Redis lost. A marker per counter and period with an
add would count twice where this cannot: after a period rolled over while the gateway ran (no
marker for the new period, whose spend the counter has counted) and the gateway then restarted.

The bound: rows reach the ledger up to ``GATEWAY_USAGE_FLUSH_INTERVAL_MS`` after their request
ends. Spend of requests admitted without the budget (in flight when it came into force, or run by
a replica before its refresh) that is not in the ledger when the last replica seeds it is not
counted: at most those requests' cost. Replicas that seed later raise the counter to what the
ledger holds by then.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.db.models import ApiKey, Organization, Team, UsageRecord
from gateway.quotas.config import Budget, LimitRule
from gateway.quotas.names import SEPARATOR
from gateway.quotas.plan import SPEND, Counter, Periods, counters, period_bounds

_SUBJECT_COLUMNS: dict[str, Any] = {"org": UsageRecord.org_id, "team": UsageRecord.team_id, "key": UsageRecord.key_id}

BudgetTarget = tuple[str, str, str | None, Budget]


def target(rule: LimitRule) -> BudgetTarget:
    """What makes a budget new to a snapshot: set again with another amount or period, it is."""
    assert rule.budget is not None
    return rule.scope, rule.name, rule.model, rule.budget


class LedgerSpend:
    """The spend the usage ledger holds, read off the request path."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def seeds(
        self, rule: LimitRule, now: float, periods: Periods, lease_ms: int
    ) -> tuple[list[Counter], list[int]]:
        """The spend counters of ``rule`` for the period ``now`` is in, and what the ledger holds
        for each: one query. Nothing for an end-user budget (not in the ledger)."""
        assert rule.budget is not None
        column = _SUBJECT_COLUMNS.get(rule.scope)
        if column is None:
            return [], []
        _, start, end = period_bounds(rule.budget, now, periods.zone)
        spent = await self._spent(rule, column, datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC))
        # Subjects as RuleIndex.matching names them: "org:<id>", "team:<id>", "key:<id>".
        held = counters([(rule, f"{rule.scope}:{subject}") for subject in spent], now, periods, lease_ms)
        spend = [counter for counter in held if counter.metric == SPEND]
        return spend, list(spent.values())

    async def _spent(self, rule: LimitRule, column: Any, start: datetime, end: datetime) -> dict[uuid.UUID, int]:
        total = func.sum(UsageRecord.cost_nano_usd)
        query = (
            select(column, total)
            .where(UsageRecord.started_at >= start, UsageRecord.started_at < end, column.is_not(None))
            .group_by(column)
            .having(total > 0)
        )
        if rule.model is not None:
            query = query.where(UsageRecord.model == rule.model)
        if rule.name != "*":
            query = query.where(column.in_(_named(rule.scope, rule.name)))
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        return {row[0]: int(row[1]) for row in rows}


def _named(scope: str, name: str) -> Select[uuid.UUID]:
    """The ids a rule's name addresses, as RuleIndex.matching reads names: an org or team by name
    (a team name may recur across orgs), a key by prefix or by its id."""
    if scope == "org":
        return select(Organization.id).where(Organization.name == name)
    if scope == "team":  # a bare name, or ORG/NAME and ORG/* (gateway.quotas.names)
        return (
            select(Team.id)
            .join(Organization, Organization.id == Team.org_id)
            .where(
                or_(
                    Team.name == name,
                    Organization.name + SEPARATOR + Team.name == name,
                    Organization.name + SEPARATOR + "*" == name,
                )
            )
        )
    by = [
        ApiKey.prefix == name,
        ApiKey.org_id.in_(select(Organization.id).where(Organization.name + SEPARATOR + "*" == name)),
    ]
    try:
        if str(uuid.UUID(name)) == name:
            by.append(ApiKey.id == uuid.UUID(name))
    except ValueError:
        pass
    return select(ApiKey.id).where(or_(*by))
