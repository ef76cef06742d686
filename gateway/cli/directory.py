"""``gateway orgs|teams|users|tokens ...``: the directory, as the admin API manages it.

Each command is the admin API's operation of the same name, made as the superuser (whoever may
run the CLI on the database may do anything) and audited as ``cli:<user>``. Listings print a
table (``--json``: the API's JSON); the others print the object as the API returns it.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from gateway.cli.common import control, print_json, say

if TYPE_CHECKING:
    from gateway.runtime import ControlPlane

_ROLES = ("org_admin", "team_admin", "viewer", "none")


def register(commands: argparse._SubParsersAction[Any]) -> None:
    _register_orgs(commands)
    _register_teams(commands)
    _register_users(commands)
    _register_tokens(commands)


def _group(commands: argparse._SubParsersAction[Any], name: str, help_: str) -> argparse._SubParsersAction[Any]:
    group: argparse._SubParsersAction[Any] = commands.add_parser(name, help=help_).add_subparsers(
        dest=f"{name}_command", required=True
    )
    return group


def _command(
    group: argparse._SubParsersAction[Any], name: str, help_: str, run: Callable[[argparse.Namespace], None]
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = group.add_parser(name, help=help_)
    parser.set_defaults(run=run)
    return parser


def _register_orgs(commands: argparse._SubParsersAction[Any]) -> None:
    orgs = _group(commands, "orgs", "organizations: list, show, create, update, delete")
    _command(orgs, "list", "every organization", _orgs_list).add_argument("--json", action="store_true")
    _command(orgs, "show", "an organization (by id or name)", _orgs_show).add_argument("org")
    create = _command(orgs, "create", "create an organization", _orgs_create)
    create.add_argument("name")
    create.add_argument("--description")
    change = _command(orgs, "update", "rename or describe an organization", _orgs_update)
    change.add_argument("org")
    change.add_argument("--name")
    change.add_argument("--description", help="'' clears it")
    _command(orgs, "delete", "delete an organization nothing refers to", _orgs_delete).add_argument("org")


def _register_teams(commands: argparse._SubParsersAction[Any]) -> None:
    teams = _group(commands, "teams", "an organization's teams: list, show, create, update, delete")
    listing = _command(teams, "list", "an organization's teams", _teams_list)
    listing.add_argument("org")
    listing.add_argument("--json", action="store_true")
    show = _command(teams, "show", "a team (by id or name)", _teams_show)
    show.add_argument("org")
    show.add_argument("team")
    create = _command(teams, "create", "create a team (its name unique in the organization)", _teams_create)
    create.add_argument("org")
    create.add_argument("name")
    create.add_argument("--description")
    change = _command(teams, "update", "rename or describe a team", _teams_update)
    change.add_argument("org")
    change.add_argument("team")
    change.add_argument("--name")
    change.add_argument("--description", help="'' clears it")
    delete = _command(teams, "delete", "delete a team no user or key refers to", _teams_delete)
    delete.add_argument("org")
    delete.add_argument("team")


def _register_users(commands: argparse._SubParsersAction[Any]) -> None:
    users = _group(commands, "users", "users and their roles: list, show, create, update, delete")
    listing = _command(users, "list", "users (of one organization with --org)", _users_list)
    listing.add_argument("--org")
    listing.add_argument("--json", action="store_true")
    _command(users, "show", "a user (by id or e-mail)", _users_show).add_argument("user")
    create = _command(users, "create", "create a user", _users_create)
    create.add_argument("email")
    create.add_argument("--org", required=True, help="the user's organization (id or name)")
    create.add_argument("--team", help="a team of that organization (id or name); a team_admin needs one")
    create.add_argument("--role", choices=_ROLES, default="none")
    create.add_argument("--name")
    create.add_argument("--disabled", action="store_true")
    change = _command(users, "update", "change a user's e-mail, name, team or role, or disable them", _users_update)
    change.add_argument("user")
    change.add_argument("--email")
    change.add_argument("--name", help="'' clears it")
    change.add_argument("--team", help="'' takes the user out of their team")
    change.add_argument("--role", choices=_ROLES)
    state = change.add_mutually_exclusive_group()
    state.add_argument("--disable", dest="disabled", action="store_const", const=True)
    state.add_argument("--enable", dest="disabled", action="store_const", const=False)
    _command(users, "delete", "delete a user who owns no keys (their admin tokens go too)", _users_delete).add_argument(
        "user"
    )


def _register_tokens(commands: argparse._SubParsersAction[Any]) -> None:
    tokens = _group(commands, "tokens", "users' admin tokens: create, list, revoke")
    create = _command(tokens, "create", "create an admin token for a user and print its secret once", _tokens_create)
    create.add_argument("user", help="the user (id or e-mail) the token acts as, with their role")
    create.add_argument("--name", required=True)
    create.add_argument("--expires", help="a duration (30d, 12h, 90m) or an ISO date/time; default: never")
    listing = _command(tokens, "list", "a user's admin tokens (never their secrets)", _tokens_list)
    listing.add_argument("user")
    listing.add_argument("--json", action="store_true")
    revoke = _command(tokens, "revoke", "revoke a user's admin token (by id or prefix)", _tokens_revoke)
    revoke.add_argument("user")
    revoke.add_argument("token")


def _run(work: Callable[[ControlPlane], Awaitable[None]]) -> None:
    async def run() -> None:
        async with control() as plane:
            await work(plane)

    asyncio.run(run())


def _print(view: Any) -> None:
    import msgspec

    print_json(msgspec.to_builtins(view))


def _table(rows: list[Any], columns: list[tuple[str, int, Callable[[Any], object]]], as_json: bool) -> None:
    """``columns``: (heading, width, value); a width of 0 (the last column): neither cut nor padded."""
    import msgspec

    if as_json:
        print_json({"data": msgspec.to_builtins(rows), "object": "list"})
        return
    print("  ".join(f"{head:{width}}" for head, width, _ in columns).rstrip())
    for row in rows:
        cells = (str(value(row) or "-") for _, _, value in columns)
        print(
            "  ".join(
                f"{cell[: width or None]:{width}}" for cell, (_, width, _) in zip(cells, columns, strict=True)
            ).rstrip()
        )


def _cleared(value: str | None) -> Any:
    """An update's option: left out (UNSET), '' (None: clear it) or a value."""
    from msgspec import UNSET

    return UNSET if value is None else (value or None)


def _who() -> tuple[Any, Any]:
    from gateway.access.principal import SUPERUSER
    from gateway.audit.actor import cli_actor

    return SUPERUSER, cli_actor()


# Organizations


def _orgs_list(args: argparse.Namespace) -> None:
    from gateway.admin.directory_schemas import OrgView

    async def work(plane: ControlPlane) -> None:
        rows = [OrgView.of(r) for r in await plane.directory.orgs(_who()[0])]
        _table(
            rows,
            [("id", 36, lambda r: r.id), ("name", 32, lambda r: r.name), ("description", 0, lambda r: r.description)],
            args.json,
        )

    _run(work)


def _orgs_show(args: argparse.Namespace) -> None:
    from gateway.admin.directory_schemas import OrgView

    async def work(plane: ControlPlane) -> None:
        _print(OrgView.of(await plane.directory.org(_who()[0], args.org)))

    _run(work)


def _orgs_create(args: argparse.Namespace) -> None:
    from gateway.admin.directory_schemas import OrgView

    async def work(plane: ControlPlane) -> None:
        _print(OrgView.of(await plane.directory.create_org(*_who(), args.name, args.description)))

    _run(work)


def _orgs_update(args: argparse.Namespace) -> None:
    from gateway.admin.directory_schemas import OrgView

    async def work(plane: ControlPlane) -> None:
        row = await plane.directory.update_org(
            *_who(), args.org, name=_unset() if args.name is None else args.name, description=_cleared(args.description)
        )
        _print(OrgView.of(row))

    _run(work)


def _orgs_delete(args: argparse.Namespace) -> None:
    async def work(plane: ControlPlane) -> None:
        row = await plane.directory.delete_org(*_who(), args.org)
        say(f"deleted organization {row.name} ({row.id})")

    _run(work)


# Teams


def _teams_list(args: argparse.Namespace) -> None:
    from gateway.admin.directory_schemas import TeamView

    async def work(plane: ControlPlane) -> None:
        rows = [TeamView.of(r) for r in await plane.directory.teams(_who()[0], args.org)]
        _table(
            rows,
            [("id", 36, lambda r: r.id), ("name", 32, lambda r: r.name), ("description", 0, lambda r: r.description)],
            args.json,
        )

    _run(work)


def _teams_show(args: argparse.Namespace) -> None:
    from gateway.admin.directory_schemas import TeamView

    async def work(plane: ControlPlane) -> None:
        _print(TeamView.of(await plane.directory.team(_who()[0], args.org, args.team)))

    _run(work)


def _teams_create(args: argparse.Namespace) -> None:
    from gateway.admin.directory_schemas import TeamView

    async def work(plane: ControlPlane) -> None:
        _print(TeamView.of(await plane.directory.create_team(*_who(), args.org, args.name, args.description)))

    _run(work)


def _teams_update(args: argparse.Namespace) -> None:
    from gateway.admin.directory_schemas import TeamView

    async def work(plane: ControlPlane) -> None:
        row = await plane.directory.update_team(
            *_who(),
            args.org,
            args.team,
            name=_unset() if args.name is None else args.name,
            description=_cleared(args.description),
        )
        _print(TeamView.of(row))

    _run(work)


def _teams_delete(args: argparse.Namespace) -> None:
    async def work(plane: ControlPlane) -> None:
        row = await plane.directory.delete_team(*_who(), args.org, args.team)
        say(f"deleted team {row.name} ({row.id})")

    _run(work)


# Users


def _users_list(args: argparse.Namespace) -> None:
    from gateway.admin.directory_schemas import UserView

    async def work(plane: ControlPlane) -> None:
        rows = [UserView.of(r) for r in await plane.directory.users(_who()[0], args.org)]
        _table(
            rows,
            [
                ("id", 36, lambda r: r.id),
                ("email", 32, lambda r: r.email),
                ("role", 10, lambda r: r.role),
                ("team", 36, lambda r: r.team_id),
                ("status", 0, lambda r: "disabled" if r.disabled else "active"),
            ],
            args.json,
        )

    _run(work)


def _users_show(args: argparse.Namespace) -> None:
    from gateway.admin.directory_schemas import UserView

    async def work(plane: ControlPlane) -> None:
        _print(UserView.of(await plane.directory.user(_who()[0], args.user)))

    _run(work)


def _role(value: str | None) -> Any:
    from msgspec import UNSET

    return UNSET if value is None else (None if value == "none" else value)


def _unset() -> Any:
    from msgspec import UNSET

    return UNSET


def _users_create(args: argparse.Namespace) -> None:
    from gateway.admin.directory_schemas import UserView

    async def work(plane: ControlPlane) -> None:
        row = await plane.directory.create_user(
            *_who(),
            args.email,
            args.org,
            team=args.team,
            role=_role(args.role),
            name=args.name,
            disabled=args.disabled,
        )
        _print(UserView.of(row))

    _run(work)


def _users_update(args: argparse.Namespace) -> None:
    from gateway.admin.directory_schemas import UserView

    async def work(plane: ControlPlane) -> None:
        row = await plane.directory.update_user(
            *_who(),
            args.user,
            email=_unset() if args.email is None else args.email,
            name=_cleared(args.name),
            team=_cleared(args.team),
            role=_role(args.role),
            disabled=_unset() if args.disabled is None else args.disabled,
        )
        _print(UserView.of(row))

    _run(work)


def _users_delete(args: argparse.Namespace) -> None:
    async def work(plane: ControlPlane) -> None:
        row = await plane.directory.delete_user(*_who(), args.user)
        say(f"deleted user {row.email} ({row.id})")

    _run(work)


# Admin tokens


def _tokens_create(args: argparse.Namespace) -> None:
    from gateway.keys.expiry import parse_expiry

    expires = parse_expiry(args.expires) if args.expires else None

    async def work(plane: ControlPlane) -> None:
        created = await plane.directory.create_token(*_who(), args.user, args.name, expires_at=expires)
        token = created.token
        print(created.secret)
        say(
            f"created admin token {token.id} (prefix {token.prefix}, expires "
            f"{token.expires_at.isoformat() if token.expires_at else 'never'}); the secret above is shown only once"
        )

    _run(work)


def _tokens_list(args: argparse.Namespace) -> None:
    from gateway.admin.directory_schemas import TokenView

    async def work(plane: ControlPlane) -> None:
        rows = [TokenView.of(r) for r in await plane.directory.tokens(_who()[0], args.user)]
        _table(
            rows,
            [
                ("id", 36, lambda r: r.id),
                ("prefix", 13, lambda r: r.prefix),
                ("name", 20, lambda r: r.name),
                ("expires", 32, lambda r: r.expires_at.isoformat() if r.expires_at else "never"),
                ("status", 0, lambda r: "revoked" if r.revoked_at else "active"),
            ],
            args.json,
        )

    _run(work)


def _tokens_revoke(args: argparse.Namespace) -> None:
    async def work(plane: ControlPlane) -> None:
        row = await plane.directory.revoke_token(*_who(), args.user, args.token)
        print(f"revoked admin token {row.id} ({row.prefix}) at {row.revoked_at.isoformat() if row.revoked_at else '?'}")

    _run(work)
