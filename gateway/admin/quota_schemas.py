"""Wire shapes of ``/admin/quotas``. A limit has the fields of an entry of ``policies/quotas.yaml``,
whether it comes from the file or was set through the API; usage names the unit of every number."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import msgspec
from litestar.params import Parameter

from gateway.quotas.config import PER_MINUTE, PERIODS, SCOPES, LimitRule
from gateway.quotas.plan import CONCURRENT, SPEND

if TYPE_CHECKING:
    from gateway.keys.model import KeyInfo
    from gateway.quotas.service import LimitUsage

# Loose types on purpose (str, not the scopes; int, not >= 1): gateway.quotas.limits.validate
# checks the rest, with the same rules and messages as the quotas file. The schema documents those
# rules (Parameter is read by the OpenAPI schema only, not by the decoder).
_WHOLE = Annotated[int, Parameter(ge=1, description="A whole number >= 1")]
_NAME = Annotated[str, Parameter(min_length=1, max_length=200, pattern=r"^[^\x00]*$")]
_PER_MINUTE = {metric: field for field, metric in PER_MINUTE.items()}
_UNITS = {"requests": "requests", "tokens": "tokens", "input_tokens": "tokens", "output_tokens": "tokens"}
_UNITS |= {CONCURRENT: "requests_in_flight", SPEND: "nano_usd"}


class Budget(msgspec.Struct, forbid_unknown_fields=True):
    micro_usd: Annotated[int, Parameter(ge=0, description="Whole micro-USD: 5000000 = $5")]
    period: Annotated[
        str,
        Parameter(description="day, week or month (calendar, in the file's time zone)", schema_extra={"enum": PERIODS}),
    ]


class LimitSpec(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """``PUT /admin/quotas/limits``: one limit, as an entry of the quotas file writes it."""

    scope: Annotated[
        str, Parameter(description="org, team, key or user (the OpenAI `user` field)", schema_extra={"enum": SCOPES})
    ]
    name: Annotated[_NAME, Parameter(description="Which one (a key by prefix or id); * = each one")] = "*"
    model: _NAME | None = None
    """Only requests for this model; leave out for every model."""
    requests_per_minute: _WHOLE | None = None
    tokens_per_minute: _WHOLE | None = None
    input_tokens_per_minute: _WHOLE | None = None
    output_tokens_per_minute: _WHOLE | None = None
    concurrent_requests: _WHOLE | None = None
    budget: Budget | None = None


class KeyLimitSpec(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """``PUT /admin/keys/{key}/limits``: a limit on this key, as ``LimitSpec`` without scope and name."""

    model: _NAME | None = None
    """Only requests for this model; leave out for every model."""
    requests_per_minute: _WHOLE | None = None
    tokens_per_minute: _WHOLE | None = None
    input_tokens_per_minute: _WHOLE | None = None
    output_tokens_per_minute: _WHOLE | None = None
    concurrent_requests: _WHOLE | None = None
    budget: Budget | None = None


SETS_A_LIMIT = (*_PER_MINUTE.values(), "concurrent_requests", "budget")
"""A spec sets at least one of these (else it limits nothing)."""


class LimitView(msgspec.Struct, omit_defaults=True):
    """A limit in force; ``id`` only for one set through the API or the CLI (the one to DELETE)."""

    scope: str
    name: str
    id: str | None = None
    model: str | None = None
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    input_tokens_per_minute: int | None = None
    output_tokens_per_minute: int | None = None
    concurrent_requests: int | None = None
    budget: Budget | None = None

    @classmethod
    def of(cls, rule: LimitRule, limit_id: str | None = None) -> LimitView:
        per_minute = {_PER_MINUTE[metric]: value for metric, value in rule.per_minute.items()}
        budget = Budget(rule.budget.nano_usd // 1000, rule.budget.period) if rule.budget else None
        view = cls(rule.scope, rule.name, limit_id, rule.model, concurrent_requests=rule.concurrent, budget=budget)
        return msgspec.structs.replace(view, **per_minute)


class LimitList(msgspec.Struct):
    file: list[LimitView]
    """From the quotas file (``GATEWAY_QUOTAS_FILE``): change them there."""
    api: list[LimitView]
    """Set through the admin API or the CLI."""


class LimitDeleted(msgspec.Struct):
    deleted: str
    """The id of the limit removed."""


class KeyRef(msgspec.Struct):
    id: str
    prefix: str


class UsageRow(msgspec.Struct):
    scope: str
    name: str
    model: str | None
    metric: str
    """requests, tokens, input_tokens, output_tokens (per minute), concurrent, or spend (per period)."""
    unit: str
    """What limit, used and remaining count: requests, tokens, requests_in_flight or nano_usd."""
    limit: int
    used: int
    remaining: int
    resets_at: str | None
    source: str
    """Where the counters were read: redis, or this process (embedded mode, or Redis down)."""
    usd: str | None = None
    """For spend: ``used / limit`` in dollars, for people (the integers are exact)."""

    @classmethod
    def of(cls, row: LimitUsage) -> UsageRow:
        usd = f"{dollars(row.used)} / {dollars(row.limit)}" if row.metric == SPEND else None
        unit = unit_of(row.metric)
        return cls(
            row.scope,
            row.name,
            row.model,
            row.metric,
            unit,
            row.limit,
            row.used,
            row.remaining,
            row.resets_at,
            row.source,
            usd,
        )


class UsageView(msgspec.Struct):
    key: KeyRef
    user: str | None
    data: list[UsageRow]

    @classmethod
    def of(cls, key: KeyInfo, user: str | None, rows: list[LimitUsage]) -> UsageView:
        return cls(KeyRef(str(key.id), key.prefix), user, [UsageRow.of(row) for row in rows])


def unit_of(metric: str) -> str:
    return _UNITS.get(metric, metric)


def dollars(nano_usd: int) -> str:
    """``$0.000123``, ``$50.00``: exact, without the trailing zeros past the cents."""
    text = f"{Decimal(nano_usd).scaleb(-9):.9f}".rstrip("0")
    whole, _, cents = text.partition(".")
    return f"${whole}.{cents.ljust(2, '0')}"
