"""``gateway keys create|list|show|update|rotate|revoke``: API keys, on the database directly (as
the superuser); every change is audited and published to the running gateways."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from gateway.audit.actor import cli_actor
from gateway.cli.common import print_json, say
from gateway.errors import InvalidRequest
from gateway.keys.expiry import parse_duration, parse_expiry

if TYPE_CHECKING:  # imported when used: `gateway --help` should not load SQLAlchemy
    from gateway.db.models import ApiKey
    from gateway.keys.service import KeyService


def register(commands: argparse._SubParsersAction[Any]) -> None:
    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(dest="keys_command", required=True)
    create = keys.add_parser("create", help="create a key and print its secret once")
    create.add_argument("--name", required=True)
    _key_fields(create)
    create.add_argument("--org", help="the organization, by name (default: default; made on first use)")
    create.set_defaults(run=_create)
    listing = keys.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(run=_list)
    show = keys.add_parser("show", help="one key, by id or prefix (never its secret)")
    show.add_argument("key")
    show.set_defaults(run=_show)
    update = keys.add_parser("update", help="change a key's name, models, expiry, owner, team or metadata")
    update.add_argument("key")
    update.add_argument("--name")
    _key_fields(update)
    update.add_argument("--all-models", action="store_true", help="let the key use every model")
    update.add_argument("--never-expires", action="store_true", help="clear the expiry")
    update.add_argument("--metadata", help="JSON object replacing the key's metadata")
    update.set_defaults(run=_update)
    rotate = keys.add_parser("rotate", help="a new secret for a key (printed once); the old one works for --grace")
    rotate.add_argument("key")
    rotate.add_argument("--grace", default="1h", help="how long the old secret keeps working: 0, 90s, 30m, 12h, 7d")
    rotate.set_defaults(run=_rotate)
    revoke = keys.add_parser("revoke", help="revoke a key by id or prefix")
    revoke.add_argument("key")
    revoke.set_defaults(run=_revoke)


def _key_fields(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", help="comma-separated models the key may use (default: all)")
    parser.add_argument("--expires", help="ISO date/time, or a duration such as 30d, 12h, 90m")
    parser.add_argument("--owner")
    parser.add_argument("--team")
    parser.add_argument("--user", help="the user the key belongs to (id or e-mail, of its organization)")


@contextlib.asynccontextmanager
async def key_service() -> AsyncIterator[KeyService]:
    from gateway.cli.common import control

    async with control() as plane:  # a key change is published to the running gateways
        yield plane.keys


def _models(text: str | None) -> list[str] | None:
    return [m.strip() for m in text.split(",") if m.strip()] if text is not None else None


def _create(args: argparse.Namespace) -> None:
    models = _models(args.models)
    expires = parse_expiry(args.expires) if args.expires else None

    async def run() -> None:
        async with key_service() as keys:
            created = await keys.create(
                args.name,
                models=models,
                expires_at=expires,
                owner=args.owner,
                team=args.team,
                user=args.user,
                org=args.org or "default",
                actor=cli_actor(),
            )
        key = created.key
        print(created.secret)
        say(
            f"created key {key.id} (prefix {key.prefix}, models {','.join(models) if models else 'all'}, "
            f"expires {key.expires_at.isoformat() if key.expires_at else 'never'}); "
            "the secret above is shown only once"
        )

    asyncio.run(run())


def _list(args: argparse.Namespace) -> None:
    async def run() -> None:
        async with key_service() as keys:
            rows = await keys.list()
        if args.json:
            print_json([_view(row) for row in rows])
            return
        print(f"{'id':36}  {'prefix':12}  {'name':20}  {'models':20}  {'expires':25}  status")
        for row in rows:
            status = "revoked" if row.revoked_at else "active"
            models = ",".join(row.allowed_models) if row.allowed_models is not None else "all"
            expires = row.expires_at.isoformat() if row.expires_at else "never"
            print(f"{row.id!s:36}  {row.prefix:12}  {row.name[:20]:20}  {models[:20]:20}  {expires:25}  {status}")

    asyncio.run(run())


def _show(args: argparse.Namespace) -> None:
    async def run() -> None:
        async with key_service() as keys:
            print_json(_view(await keys.show(args.key)))

    asyncio.run(run())


def _update(args: argparse.Namespace) -> None:
    changes: dict[str, Any] = {}
    for field in ("name", "owner", "team", "user"):
        if getattr(args, field) is not None:
            changes[field] = getattr(args, field) or None  # an empty value clears it
    if args.models is not None and args.all_models:
        raise InvalidRequest("Give --models or --all-models, not both.", param="--models")
    if args.models is not None or args.all_models:
        changes["models"] = None if args.all_models else _models(args.models)
    if args.expires is not None and args.never_expires:
        raise InvalidRequest("Give --expires or --never-expires, not both.", param="--expires")
    if args.expires is not None or args.never_expires:
        changes["expires_at"] = None if args.never_expires else parse_expiry(args.expires)
    if args.metadata is not None:
        changes["metadata"] = _metadata(args.metadata)
    if not changes:
        raise InvalidRequest("Nothing to change: give at least one of the options (see --help).")

    async def run() -> None:
        async with key_service() as keys:
            print_json(_view(await keys.update(args.key, actor=cli_actor(), **changes)))

    asyncio.run(run())


def _rotate(args: argparse.Namespace) -> None:
    grace = parse_duration(args.grace, "--grace", seconds=True)

    async def run() -> None:
        async with key_service() as keys:
            made = await keys.rotate(args.key, grace=grace, actor=cli_actor())
        print(made.secret)
        until = made.key.previous_expires_at
        say(
            f"rotated key {made.key.id} (new prefix {made.key.prefix}); the old secret "
            + (f"works until {until.isoformat()}" if until else "stopped working now")
            + "; the secret above is shown only once"
        )

    asyncio.run(run())


def _revoke(args: argparse.Namespace) -> None:
    async def run() -> None:
        async with key_service() as keys:
            row = await keys.revoke(args.key, actor=cli_actor())
        print(f"revoked key {row.id} ({row.prefix}) at {row.revoked_at.isoformat() if row.revoked_at else '?'}")

    asyncio.run(run())


def _metadata(text: str) -> dict[str, Any]:
    import json

    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise InvalidRequest(
            '--metadata: expected a JSON object, such as \'{"cost_center": "42"}\'.', param="--metadata"
        )
    return value


def _view(row: ApiKey) -> dict[str, Any]:
    from gateway.keys.service import audit_view

    return audit_view(row) | {"created_at": row.created_at.isoformat()}
