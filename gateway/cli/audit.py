"""``gateway audit list|show``: the audit log, read from the database (never changed: there is no
command that edits or deletes it). Filters as ``GET /admin/audit`` takes them; the CLI reads every
organization's entries, as the superuser does."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING, Any

from gateway.cli.common import control, print_json

if TYPE_CHECKING:
    from gateway.db.models import AuditEntry


def register(commands: argparse._SubParsersAction[Any]) -> None:
    """Add this group's commands."""
    group = commands.add_parser("audit", help="the audit log: who changed what, when, before and after")
    audit = group.add_subparsers(dest="audit_command", required=True)
    listing = audit.add_parser("list", help="entries, newest first (a table; --json for every field)")
    listing.add_argument("--actor", help="admin-key, a user's e-mail, cli:<user>, models-file")
    listing.add_argument("--action", help="key.create, version.promote, limit.set, ...")
    listing.add_argument("--object-type", help="key, org, team, model, version, backend, limit, ...")
    listing.add_argument("--object", help="an object's id or name")
    listing.add_argument("--source", help="api, cli, sync or internal")
    listing.add_argument("--since", help="entries at or after this ISO date-time (with a zone: Z, +01:00)")
    listing.add_argument("--until", help="entries before this ISO date-time")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (1-1000, default 100)")
    listing.add_argument("--before-id", type=int, help="only entries older than this id (the next page)")
    listing.add_argument("--json", action="store_true", help="print the entries as JSON, before and after included")
    listing.set_defaults(run=_list)
    show = audit.add_parser("show", help="one entry, as JSON")
    show.add_argument("id", type=int)
    show.set_defaults(run=_show)


def _list(args: argparse.Namespace) -> None:
    from gateway.audit.log import AuditQuery, parse_moment

    query = AuditQuery(
        actor=args.actor,
        source=args.source,
        action=args.action,
        object_type=args.object_type,
        object=args.object,
        since=parse_moment(args.since, "since"),
        until=parse_moment(args.until, "until"),
        limit=args.limit,
        before_id=args.before_id,
    )

    async def run() -> None:
        async with control() as plane:
            rows = await plane.audit.entries(query)
        if args.json:
            print_json([_builtins(row) for row in rows])
            return
        if not rows:
            print("no audit entries match")
            return
        print(f"{'id':>8}  {'at':25}  {'actor':24}  {'source':6}  {'action':18}  object")
        for row in rows:
            print(
                f"{row.id:>8}  {row.at.isoformat(timespec='seconds'):25}  {row.actor[:24]:24}  {row.source:6}  "
                f"{row.action[:18]:18}  {_object(row)}"
            )

    asyncio.run(run())


def _object(row: AuditEntry) -> str:
    named = f" ({row.object_name})" if row.object_name else ""
    return f"{row.object_type} {row.object_id}{named}"


def _show(args: argparse.Namespace) -> None:
    async def run() -> None:
        async with control() as plane:
            print_json(_builtins(await plane.audit.entry(args.id)))

    asyncio.run(run())


def _builtins(row: AuditEntry) -> Any:
    import msgspec

    from gateway.admin.audit_schemas import AuditEntryView

    return msgspec.to_builtins(AuditEntryView.of(row))
