"""``/admin/quotas``: the limits in force, setting them, and where a key stands against them."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, delete, get, put
from litestar.openapi.spec import Schema
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK

from gateway.access.principal import Principal
from gateway.access.roles import Action
from gateway.admin.auth import AdminController, actor_of, principal_of
from gateway.admin.quota_schemas import SETS_A_LIMIT, LimitDeleted, LimitList, LimitSpec, LimitView, UsageView
from gateway.errors import Forbidden, NotFound
from gateway.quotas.limits import Authorize, Reach
from gateway.runtime import Runtime
from gateway.web.openapi import constrained_body, error_responses, present


def sets_a_limit_schema() -> Schema:
    return Schema(any_of=[present(name) for name in SETS_A_LIMIT])


def may_write_limit(principal: Principal, *, removing: bool = False) -> Authorize:
    """The scope check of a limit's set or remove: every organization and team it reaches must be
    the principal's (a team admin's: their own team, or its keys)."""

    def check(reach: Reach) -> None:
        if principal.superuser:
            return
        if reach.everywhere:
            what = "every one of the scope ('*')" if reach.name == "*" else "end users of every organization"
            raise Forbidden(f"A {reach.scope} limit on {what} reaches every organization: only the superuser sets it.")
        if not reach.places:
            where = "your team" if principal.team_filter else "your organization"
            if removing:  # it exists, but what it names is gone (or never was) in every organization
                raise Forbidden(f"That limit applies to no {reach.scope} in {where}.")
            raise NotFound(f"No {reach.scope} {reach.name!r} in {where}.", param="name")
        for org_id, team_id in sorted(reach.places, key=str):
            try:
                principal.check(Action.LIMITS_WRITE, org_id, team_id)
            except Forbidden as exc:
                if len(reach.places) > 1:  # a team name other organizations use too
                    raise Forbidden(f"{exc.message} The {reach.scope} {reach.name!r} names several.") from None
                raise

    return check


def _may_read(principal: Principal, reach: Reach) -> bool:
    """A listing shows a limit that reaches into the principal's organization (team), or ``*``."""
    if principal.superuser or reach.name == "*":
        return True
    if reach.everywhere:  # an end user's: the names are other organizations' end users too
        return False
    team = principal.team_filter
    return any(org == principal.org_filter and (team is None or found == team) for org, found in reach.places)


class AdminQuotasController(AdminController):
    path = "/admin/quotas"

    @get(
        "/usage",
        summary="A key's usage against every limit that applies to it (and its end user's)",
        responses=error_responses(400, 401, 403, 404, 503),
        opt={"action": Action.USAGE_READ},
    )
    async def usage(
        self, request: Request[Any, Any, Any], key: FromQuery[str], user: FromQuery[str | None] = None
    ) -> UsageView:
        runtime: Runtime = request.app.state.runtime
        info = await runtime.keys.info(key)
        principal_of(request).check(Action.USAGE_READ, info.org_id, info.team_id)
        return UsageView.of(info, user, await runtime.quotas.usage(runtime.live.current.limits, info, user))


class AdminQuotaLimitsController(AdminController):
    """Limits set through the API live in SQL beside those of policies/quotas.yaml."""

    path = "/admin/quotas/limits"

    @get(
        "/",
        summary="Every limit in force: from the quotas file, and set through the API or CLI",
        responses=error_responses(401, 403, 503),
        opt={"action": Action.LIMITS_READ},
    )
    async def list_limits(self, request: Request[Any, Any, Any]) -> LimitList:
        runtime: Runtime = request.app.state.runtime
        principal = principal_of(request)
        stored = await runtime.limits.list()
        in_file = runtime.quotas.file_rules
        if principal.superuser:
            return LimitList(
                file=[LimitView.of(rule) for rule in in_file],
                api=[LimitView.of(limit.rule, str(limit.id)) for limit in stored],
            )
        file_reach = await runtime.limits.reaches(in_file)
        api_reach = await runtime.limits.reaches(limit.rule for limit in stored)
        return LimitList(
            file=[
                LimitView.of(rule)
                for rule, reach in zip(in_file, file_reach, strict=True)
                if _may_read(principal, reach)
            ],
            api=[
                LimitView.of(limit.rule, str(limit.id))
                for limit, reach in zip(stored, api_reach, strict=True)
                if _may_read(principal, reach)
            ],
        )

    @put(
        "/",
        summary="Set a limit (replacing the one on the same scope, name and model)",
        status_code=HTTP_200_OK,
        responses=error_responses(400, 401, 403, 404, 409, 503),
        operation_class=constrained_body(sets_a_limit_schema),
        opt={"action": Action.LIMITS_WRITE},
    )
    async def set_limit(self, request: Request[Any, Any, Any], data: JSONBody[LimitSpec]) -> LimitView:
        runtime: Runtime = request.app.state.runtime
        # Stored as the quotas file would write it (what was left out stays out), and checked by
        # the file's own rules there. A change like any other: this replica takes it up before
        # answering, the others by the change notice.
        # An org or team admin's team, end-user or every-key limit is their organization's: its
        # name is qualified ("acme/ml"), so it can never reach into another organization.
        principal = principal_of(request)
        stored = await runtime.limits.put(
            msgspec.to_builtins(data),
            actor=actor_of(request),
            authorize=may_write_limit(principal),
            owner_org=None if principal.superuser else principal.org_id,
        )
        return LimitView.of(stored.rule, str(stored.id))

    @delete(
        "/{limit_id:str}",
        summary="Remove a limit set through the API or CLI",
        status_code=HTTP_200_OK,
        responses=error_responses(400, 401, 403, 404, 503),
        opt={"action": Action.LIMITS_WRITE},
    )
    async def remove_limit(self, request: Request[Any, Any, Any], limit_id: FromPath[str]) -> LimitDeleted:
        runtime: Runtime = request.app.state.runtime
        await runtime.limits.remove(
            limit_id, actor=actor_of(request), authorize=may_write_limit(principal_of(request), removing=True)
        )
        return LimitDeleted(deleted=limit_id)
