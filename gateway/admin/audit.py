"""``/admin/audit``: the audit log, read only. There is no route that writes, edits or deletes it
(tests/test_audit.py checks that only GET exists here)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.params import FromPath

from gateway.access.roles import Action
from gateway.admin.audit_schemas import (
    ORG_FILTER,
    AuditEntryView,
    AuditList,
    BeforeId,
    Limit,
    moment_filter,
    text_filter,
)
from gateway.admin.auth import AdminController, principal_of, runtime_of
from gateway.audit.log import DEFAULT_LIMIT, AuditQuery, parse_moment, parse_org
from gateway.web.openapi import error_responses

_READ = {"action": Action.AUDIT_READ}
_Text = str | None


class AdminAuditController(AdminController):
    path = "/admin/audit"

    @get(
        "/",
        summary="The audit log, newest first, with filters",
        responses=error_responses(400, 401, 403, 503),
        opt=_READ,
    )
    async def list_entries(
        self,
        request: Request[Any, Any, Any],
        actor: Annotated[_Text, text_filter("Who made the change (admin-key, an e-mail, cli:<user>)")] = None,
        role: Annotated[_Text, text_filter("The actor's role")] = None,
        source: Annotated[_Text, text_filter("api, cli, sync or internal")] = None,
        action: Annotated[_Text, text_filter("What was done: key.create, version.promote, limit.set, ...")] = None,
        object_type: Annotated[_Text, text_filter("key, org, team, model, version, backend, limit, ...")] = None,
        object_id: Annotated[_Text, text_filter("The object's id")] = None,
        object: Annotated[_Text, text_filter("The object's id or name")] = None,
        org_id: Annotated[_Text, ORG_FILTER] = None,
        since: Annotated[_Text, moment_filter("Entries at or after this moment")] = None,
        until: Annotated[_Text, moment_filter("Entries before this moment")] = None,
        limit: Limit = DEFAULT_LIMIT,
        before_id: BeforeId = None,
    ) -> AuditList:
        principal = principal_of(request)
        org = parse_org(org_id)
        if org is not None:
            principal.check(Action.AUDIT_READ, org)
        query = AuditQuery(
            actor=actor,
            role=role,
            source=source,
            action=action,
            object_type=object_type,
            object_id=object_id,
            object=object,
            org_id=org,
            since=parse_moment(since, "since"),
            until=parse_moment(until, "until"),
            limit=limit,
            before_id=before_id,
        )
        rows = await runtime_of(request).control.audit.entries(query, org_filter=principal.org_filter)
        next_before = rows[-1].id if len(rows) == limit else None
        return AuditList(data=[AuditEntryView.of(row) for row in rows], next_before_id=next_before)

    @get("/{entry_id:int}", summary="One audit entry", responses=error_responses(400, 401, 403, 404, 503), opt=_READ)
    async def show_entry(self, request: Request[Any, Any, Any], entry_id: FromPath[int]) -> AuditEntryView:
        row = await runtime_of(request).control.audit.entry(entry_id)
        # Another organization's entry, or one of no organization (models, backends): the superuser's.
        principal_of(request).check(Action.AUDIT_READ, row.org_id)
        return AuditEntryView.of(row)


CONTROLLERS: list[type[Controller]] = [AdminAuditController]
